/**
 * Typed errors of the erofs reader. Errors caused by image content name the byte offset of the
 * bad data where there is one, so a user can find it with a hex dump.
 */
export class ErofsError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The image content is inconsistent: a value out of range, a reference outside the image, … */
export class CorruptImageError extends ErofsError {
  constructor(
    readonly what: string,
    readonly offset: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(offset === undefined ? `corrupt erofs image: ${what}` : `corrupt erofs image at offset ${offset}: ${what}`, options);
  }
}

/** The image ends before a structure it references. */
export class TruncatedImageError extends CorruptImageError {
  constructor(
    readonly position: number,
    readonly length: number,
    readonly imageSize: number,
  ) {
    super(`read of ${length} bytes at ${position} runs past the end of the image (${imageSize} bytes)`, position);
  }
}

/** A compressed cluster did not decode to the size its extent says. */
export class DecompressError extends CorruptImageError {
  constructor(
    readonly algorithm: string,
    detail: string,
    offset: number,
    options?: { cause?: unknown },
  ) {
    super(`${algorithm} cluster does not decompress: ${detail}`, offset, options);
  }
}

/** A valid image that uses a feature this reader does not implement. */
export class UnsupportedImageError extends ErofsError {}
