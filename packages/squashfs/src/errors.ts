/**
 * Typed errors of the squashfs reader. Every error caused by image content names the byte
 * offset where the bad data sits, so a user can find it with a hex dump.
 */
export class SquashfsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The image content is inconsistent: a value out of range, a reference outside the image, … */
export class CorruptImageError extends SquashfsError {
  constructor(
    readonly what: string,
    readonly offset: number | undefined,
  ) {
    super(offset === undefined ? `corrupt image: ${what}` : `corrupt image at offset ${offset}: ${what}`);
  }

  /**
   * For an image that starts `base` bytes into its file: restate the message with file offsets
   * (what a hex dump of the file shows), keeping the image offset too. Returns this.
   */
  inFileAt(base: number): this {
    if (base !== 0 && this.offset !== undefined) {
      this.message = `corrupt image at offset ${base + this.offset} of the file (${this.offset} into the image at ${base}): ${this.detailInFile(base)}`;
    }
    return this;
  }

  /** `what`, restated for file offsets where it names positions itself. */
  protected detailInFile(_base: number): string {
    return this.what;
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

  protected override detailInFile(base: number): string {
    return `read of ${this.length} bytes at ${base + this.position} runs past the end of the image (${this.imageSize} bytes from ${base}, to ${base + this.imageSize})`;
  }
}

/** A compressed block did not decode, or decoded to more bytes than allowed. */
export class DecompressError extends CorruptImageError {
  constructor(
    readonly compressor: string,
    readonly detail: string,
    offset?: number,
  ) {
    super(`${compressor} block does not decompress: ${detail}`, offset);
  }
}

/** A valid image using a feature this reader does not implement (for instance an old format version). */
export class UnsupportedImageError extends SquashfsError {}
