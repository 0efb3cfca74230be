/** A read outside [0, size) of a source: a caller's (or an image's) bad offset or length. */
export class ByteRangeError extends Error {
  override name = 'ByteRangeError';
  constructor(
    readonly label: string,
    readonly position: number,
    readonly length: number,
    readonly size: number,
  ) {
    super(`${label}: read of ${length} bytes at offset ${position} is outside [0, ${size})`);
  }
}

/** A file that shrank while in use: the bytes from `position` on are gone. */
export class SourceTruncatedError extends Error {
  override name = 'SourceTruncatedError';
  constructor(
    readonly label: string,
    readonly position: number,
    readonly length: number,
    readonly available: number,
  ) {
    super(`${label}: ${length} bytes at offset ${position} wanted, the file now ends at ${available}`);
  }
}

/** Whether [position, position+length) is a valid range inside [0, size). */
export function inRange(position: number, length: number, size: number): boolean {
  return Number.isSafeInteger(position) && Number.isSafeInteger(length) && position >= 0 && length >= 0 && position + length <= size;
}
