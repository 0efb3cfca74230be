/**
 * Random access to the bytes of an image: the one seam every reader (squashfs, erofs, the
 * verity checker) goes through, whatever holds the bytes (a file, a buffer, a verified view of
 * another source, a remote blob).
 *
 * Synchronous: the FUSE server answers each request on one thread from start to end, and a
 * synchronous pread is the cheapest way to get bytes there. A library user whose event loop must
 * not block, or a source that is remote, uses AsyncByteSource.
 *
 * Contract of read(): exactly `length` bytes at `position`, or an error when the range is not
 * inside [0, size) or the bytes cannot be had; the result may be a view of the source's own
 * memory, so the caller keeps it as long as it likes but never writes to it.
 */
export interface ByteSource {
  /** Number of readable bytes. */
  readonly size: number;
  read(position: number, length: number): Buffer;
  /**
   * Optional: the same bytes written to dst[0, length) instead of a new Buffer. Hot paths use it
   * to read into reused buffers: fresh memory for every block costs page faults.
   */
  readInto?(position: number, length: number, dst: Buffer): void;
  close?(): void;
}

/** The same seam for callers that must not block, and for sources that cannot answer at once. */
export interface AsyncByteSource {
  readonly size: number;
  read(position: number, length: number): Promise<Buffer>;
  close?(): void | Promise<void>;
}

/** A source whose reads can also be had without blocking (a file: the libuv thread pool). */
export interface DualByteSource extends ByteSource {
  readAsync(position: number, length: number): Promise<Buffer>;
}

function isDual(s: ByteSource): s is DualByteSource {
  return typeof (s as Partial<DualByteSource>).readAsync === 'function';
}

/**
 * `source` as an AsyncByteSource: a file reads on the thread pool; any other source (a buffer,
 * a verified view whose work is CPU-bound anyway) answers from its synchronous read.
 */
export function toAsync(source: ByteSource): AsyncByteSource {
  return {
    get size() {
      return source.size;
    },
    read: isDual(source) ? (p, l) => source.readAsync(p, l) : async (p, l) => source.read(p, l),
    close: () => source.close?.(),
  };
}
