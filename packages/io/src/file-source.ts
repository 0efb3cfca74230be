import { closeSync, fstatSync, openSync, read, readSync } from 'node:fs';
import type { DualByteSource } from './byte-source.js';
import { ByteRangeError, inRange, SourceTruncatedError } from './errors.js';

export interface FileSourceOptions {
  /** Window start inside the file (an image embedded at an offset). Default 0. */
  offset?: number;
  /** Window length. Default: the rest of the file. */
  size?: number;
  /** Name used in error messages. Default: the path, or `fd N`. */
  label?: string;
}

/**
 * A file, or a window of it, read with pread on one descriptor. The descriptor is shared by
 * number with worker threads of this process (descriptors are per process), so a thread never
 * reopens a file that may have been replaced since.
 */
export class FileSource implements DualByteSource {
  readonly size: number;
  readonly offset: number;
  readonly label: string;
  /** The path it was opened from (undefined when given a descriptor). */
  readonly path: string | Buffer | undefined;
  private fdValue: number;
  private readonly ownsFd: boolean;

  constructor(fileOrFd: string | Buffer | number, options: FileSourceOptions = {}) {
    this.ownsFd = typeof fileOrFd !== 'number';
    this.path = typeof fileOrFd !== 'number' ? fileOrFd : undefined;
    this.label = options.label ?? (typeof fileOrFd === 'number' ? `fd ${fileOrFd}` : fileOrFd.toString());
    this.fdValue = typeof fileOrFd === 'number' ? fileOrFd : openSync(fileOrFd, 'r');
    try {
      const fileSize = fstatSync(this.fdValue).size;
      const offset = options.offset ?? 0;
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > fileSize) throw this.windowError(offset, fileSize);
      const size = options.size ?? fileSize - offset;
      if (!Number.isSafeInteger(size) || size < 0 || offset + size > fileSize) throw this.truncatedError(0, size, fileSize - offset);
      this.offset = offset;
      this.size = size;
    } catch (err) {
      if (this.ownsFd) closeSync(this.fdValue);
      throw err;
    }
  }

  /** The open descriptor (-1 once closed). */
  get fd(): number {
    return this.fdValue;
  }

  read(position: number, length: number): Buffer {
    // Checked before allocating: the length may come from a hostile image.
    if (!inRange(position, length, this.size)) throw this.rangeError(position, length);
    const out = Buffer.allocUnsafe(length);
    this.readInto(position, length, out);
    return out;
  }

  readInto(position: number, length: number, dst: Buffer): void {
    if (!inRange(position, length, this.size)) throw this.rangeError(position, length);
    if (dst.length < length) throw new RangeError(`readInto: destination of ${dst.length} bytes is shorter than ${length}`);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fdValue, dst, done, length - done, this.offset + position + done);
      // The file shrank under us: report it as such, never return a short buffer.
      if (n === 0) throw this.truncatedError(position, length, position + done);
      done += n;
    }
  }

  async readAsync(position: number, length: number): Promise<Buffer> {
    if (!inRange(position, length, this.size)) throw this.rangeError(position, length);
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = await new Promise<number>((resolve, reject) =>
        read(this.fdValue, out, done, length - done, this.offset + position + done, (err, bytes) => (err ? reject(err) : resolve(bytes))),
      );
      if (n === 0) throw this.truncatedError(position, length, position + done);
      done += n;
    }
    return out;
  }

  close(): void {
    if (this.ownsFd && this.fdValue >= 0) closeSync(this.fdValue);
    this.fdValue = -1;
  }

  /** Packages give their own error types by overriding these three (positions within the window). */
  protected rangeError(position: number, length: number): Error {
    return new ByteRangeError(this.label, position, length, this.size);
  }

  protected truncatedError(position: number, length: number, available: number): Error {
    return new SourceTruncatedError(this.label, position, length, available);
  }

  protected windowError(offset: number, fileSize: number): Error {
    return new ByteRangeError(this.label, offset, 0, fileSize);
  }
}
