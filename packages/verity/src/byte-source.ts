import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { VerityArgumentError, VerityTruncatedError } from './errors.js';

/**
 * Random access to bytes. Declared here (not imported) so this package depends on nothing; it is
 * structurally identical to @atomfs/squashfs's ByteSource, so a VerifiedSource can be handed to
 * the squashfs reader as is. Synchronous because the FUSE read path is synchronous per thread.
 */
export interface ByteSource {
  /** Number of readable bytes. */
  readonly size: number;
  /** Exactly `length` bytes at `position`; throws when the range is not inside [0, size). */
  read(position: number, length: number): Buffer;
  /** Optional: the same bytes written to dst[0, length) (lets readers reuse buffers). */
  readInto?(position: number, length: number, dst: Buffer): void;
  close?(): void;
}

/** Throws unless [position, position+length) is a valid range inside [0, size). */
export function checkReadRange(label: string, position: number, length: number, size: number): void {
  if (
    !Number.isSafeInteger(position) ||
    !Number.isSafeInteger(length) ||
    position < 0 ||
    length < 0 ||
    position + length > size
  ) {
    throw new VerityArgumentError(label, `read of ${length} bytes at offset ${position} is outside [0, ${size})`);
  }
}

/** Options of FileByteSource. */
export interface FileByteSourceOptions {
  /** Window start inside the file (default 0). */
  offset?: number;
  /** Window length (default: rest of the file). */
  size?: number;
  /** Name used in error messages (default: the path, or `fd N`). */
  label?: string;
}

/** A file (or a window of it) read with pread on one descriptor. */
export class FileByteSource implements ByteSource {
  readonly size: number;
  readonly offset: number;
  readonly label: string;
  /** The path it was opened from, when opened by path (worker threads reopen nothing: they share `fd`). */
  readonly path: string | undefined;
  private fdValue: number;
  private readonly ownsFd: boolean;

  constructor(fileOrFd: string | number, options: FileByteSourceOptions = {}) {
    this.ownsFd = typeof fileOrFd === 'string';
    this.path = typeof fileOrFd === 'string' ? fileOrFd : undefined;
    this.label = options.label ?? (typeof fileOrFd === 'string' ? fileOrFd : `fd ${fileOrFd}`);
    this.fdValue = typeof fileOrFd === 'string' ? openSync(fileOrFd, 'r') : fileOrFd;
    try {
      const fileSize = fstatSync(this.fdValue).size;
      const offset = options.offset ?? 0;
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > fileSize) {
        throw new VerityArgumentError(this.label, `window offset ${offset} is outside the file (${fileSize} bytes)`);
      }
      const size = options.size ?? fileSize - offset;
      if (!Number.isSafeInteger(size) || size < 0 || offset + size > fileSize) {
        throw new VerityTruncatedError(this.label, offset, size, fileSize);
      }
      this.offset = offset;
      this.size = size;
    } catch (err) {
      if (this.ownsFd) closeSync(this.fdValue);
      throw err;
    }
  }

  /** The descriptor (shared with worker threads by number: descriptors are per process). */
  get fd(): number {
    return this.fdValue;
  }

  read(position: number, length: number): Buffer {
    checkReadRange(this.label, position, length, this.size);
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fdValue, out, done, length - done, this.offset + position + done);
      // The file shrank under us: report it as truncation, never return a short buffer.
      if (n === 0) throw new VerityTruncatedError(this.label, this.offset + position + done, length - done, this.offset + position + done);
      done += n;
    }
    return out;
  }

  close(): void {
    if (this.ownsFd && this.fdValue >= 0) closeSync(this.fdValue);
    this.fdValue = -1;
  }
}

/** A Buffer as a source (tests, small images held in memory). Returns copies, never views. */
export class BufferByteSource implements ByteSource {
  constructor(
    private readonly buf: Buffer,
    readonly label = 'buffer',
  ) {}
  get size(): number {
    return this.buf.length;
  }
  read(position: number, length: number): Buffer {
    checkReadRange(this.label, position, length, this.buf.length);
    return Buffer.from(this.buf.subarray(position, position + length));
  }
}
