import { BufferSource as IoBufferSource, FileSource as IoFileSource } from '@atomfs/io';
import { ErofsError, TruncatedImageError } from './errors.js';

// The byte-source seam is @atomfs/io's, shared by every reader (and the verity checker under
// them); this package only gives its own sources its own errors.
export type { ByteSource } from '@atomfs/io';

/** A Buffer as an image (tests, images held in memory). */
export class BufferSource extends IoBufferSource {
  protected override rangeError(position: number, length: number): Error {
    return new TruncatedImageError(position, length, this.size);
  }
}

/** A file (or a window of it, for an image embedded at an offset in a larger file). */
export class FileSource extends IoFileSource {
  constructor(fileOrFd: string | Buffer | number, offset = 0, size?: number) {
    super(fileOrFd, { offset, ...(size !== undefined ? { size } : {}) });
  }

  protected override rangeError(position: number, length: number): Error {
    return new TruncatedImageError(position, length, this.size);
  }

  protected override truncatedError(position: number, length: number, available: number): Error {
    return new TruncatedImageError(position, length, available);
  }

  protected override windowError(offset: number, fileSize: number): Error {
    return new ErofsError(`offset ${offset} is past the end of the file (${fileSize} bytes)`);
  }
}
