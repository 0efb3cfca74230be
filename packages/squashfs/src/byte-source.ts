import { BufferSource as IoBufferSource, FileSource as IoFileSource } from '@atomfs/io';
import { SquashfsError, TruncatedImageError } from './errors.js';

// The byte-source seam is @atomfs/io's, shared by every reader; this package only gives its
// sources its own errors (a read past the end is a truncated image).
export type { ByteSource } from '@atomfs/io';

/** A Buffer as an image (tests, images held in memory). */
export class BufferSource extends IoBufferSource {
  protected override rangeError(position: number, length: number): Error {
    return new TruncatedImageError(position, length, this.size);
  }
}

/** A file (or a window of it, for images embedded at an offset in a larger file). */
export class FileSource extends IoFileSource {
  constructor(fileOrFd: string | Buffer | number, offset = 0, size?: number) {
    super(fileOrFd, { offset, ...(size !== undefined ? { size } : {}) });
  }

  /** The open file descriptor (another thread of this process can read the image through it). */
  get descriptor(): number {
    return this.fd;
  }

  protected override rangeError(position: number, length: number): Error {
    return new TruncatedImageError(position, length, this.size);
  }

  protected override truncatedError(position: number, length: number, available: number): Error {
    return new TruncatedImageError(position, length, available);
  }

  protected override windowError(offset: number, fileSize: number): Error {
    return new SquashfsError(`offset ${offset} is past the end of the file (${fileSize} bytes)`);
  }
}
