import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { SquashfsError, TruncatedImageError } from './errors.js';

/**
 * Random access to the bytes of an image: the one seam every reader layer goes through.
 * Synchronous on purpose: the FUSE server answers each request on one thread from start to
 * end (worker threads), and a synchronous pread is the cheapest way to get bytes there.
 * A verity-checking source (package @atomfs/verity) has the same shape and slots in here.
 */
export interface ByteSource {
  /** Number of readable bytes. */
  readonly size: number;
  /** Exactly `length` bytes at `position`; throws when the range is not inside [0, size). */
  read(position: number, length: number): Buffer;
  /**
   * Optional: the same bytes as read(), written to dst[0, length) instead of a new Buffer. Hot
   * paths use it to read into reused buffers: fresh memory for every block costs page faults.
   */
  readInto?(position: number, length: number, dst: Buffer): void;
  close?(): void;
}

function checkRange(position: number, length: number, size: number): void {
  if (!Number.isSafeInteger(position) || !Number.isSafeInteger(length) || position < 0 || length < 0 || position + length > size) {
    throw new TruncatedImageError(position, length, size);
  }
}

/** A Buffer as an image (tests, images held in memory). */
export class BufferSource implements ByteSource {
  constructor(private readonly buf: Buffer) {}
  get size(): number {
    return this.buf.length;
  }
  read(position: number, length: number): Buffer {
    checkRange(position, length, this.buf.length);
    return this.buf.subarray(position, position + length);
  }
  readInto(position: number, length: number, dst: Buffer): void {
    checkRange(position, length, this.buf.length);
    this.buf.copy(dst, 0, position, position + length);
  }
}

/** A file (or a window of it, for images embedded at an offset in a larger file). */
export class FileSource implements ByteSource {
  readonly size: number;
  private fd: number;
  private readonly ownsFd: boolean;

  constructor(
    fileOrFd: string | Buffer | number,
    readonly offset = 0,
    size?: number,
  ) {
    this.ownsFd = typeof fileOrFd !== 'number';
    this.fd = typeof fileOrFd !== 'number' ? openSync(fileOrFd, 'r') : fileOrFd;
    const fileSize = fstatSync(this.fd).size;
    if (offset < 0 || offset > fileSize) {
      if (this.ownsFd) closeSync(this.fd);
      throw new SquashfsError(`offset ${offset} is past the end of the file (${fileSize} bytes)`);
    }
    this.size = size ?? fileSize - offset;
  }

  read(position: number, length: number): Buffer {
    checkRange(position, length, this.size); // before allocating: length may come from a hostile image
    const out = Buffer.allocUnsafe(length);
    this.readInto(position, length, out);
    return out;
  }

  readInto(position: number, length: number, out: Buffer): void {
    checkRange(position, length, this.size);
    if (out.length < length) throw new RangeError(`readInto: destination of ${out.length} bytes is shorter than ${length}`);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, this.offset + position + done);
      // The file shrank under us (truncated while in use): report it like any truncation.
      if (n === 0) throw new TruncatedImageError(position, length, position + done);
      done += n;
    }
  }

  /** The open file descriptor (another thread of this process can read the image through it). */
  get descriptor(): number {
    return this.fd;
  }

  close(): void {
    if (this.ownsFd && this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
