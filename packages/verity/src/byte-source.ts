import { BufferSource, FileSource, type FileSourceOptions } from '@atomfs/io';
import { VerityArgumentError, VerityTruncatedError } from './errors.js';

// The byte-source seam is @atomfs/io's, shared by every reader; the sources here only give this
// package's errors (a short file is a truncated layer, a bad range a caller's mistake).
export type { ByteSource } from '@atomfs/io';

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
export type FileByteSourceOptions = FileSourceOptions;

/** A file (or a window of it) read with pread on one descriptor. */
export class FileByteSource extends FileSource {
  constructor(fileOrFd: string | number, options: FileByteSourceOptions = {}) {
    super(fileOrFd, options);
  }

  protected override rangeError(position: number, length: number): Error {
    return new VerityArgumentError(this.label, `read of ${length} bytes at offset ${position} is outside [0, ${this.size})`);
  }

  protected override truncatedError(position: number, length: number, available: number): Error {
    return new VerityTruncatedError(this.label, this.offset + available, length - (available - position), this.offset + available);
  }

  protected override windowError(offset: number, fileSize: number): Error {
    return new VerityArgumentError(this.label, `window offset ${offset} is outside the file (${fileSize} bytes)`);
  }
}

/** A Buffer as a source (tests, small images held in memory). */
export class BufferByteSource extends BufferSource {
  protected override rangeError(position: number, length: number): Error {
    return new VerityArgumentError(this.label, `read of ${length} bytes at offset ${position} is outside [0, ${this.size})`);
  }
}
