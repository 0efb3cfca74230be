/**
 * Typed errors of the verity package. Every message is one line that names the layer (the
 * caller's label, typically the layer digest) and the byte offset or block that failed, so an
 * operator can go straight to the bad bytes with a hex dump.
 */
export class VerityError extends Error {
  constructor(
    readonly label: string,
    /** The message without the "verity: <label>: " prefix. */
    readonly detail: string,
  ) {
    // One line, whatever the caller's label holds.
    super(`verity: ${label.replace(/[\x00-\x1f\x7f]/g, '?')}: ${detail}`);
    this.name = new.target.name;
  }
}

/** The verity superblock is absent, malformed, or inconsistent with the file it sits in. */
export class VeritySuperblockError extends VerityError {
  constructor(
    label: string,
    /** Byte offset of the superblock in the file. */
    readonly offset: number,
    readonly reason: string,
  ) {
    super(label, `superblock at offset ${offset}: ${reason}`);
  }
}

/** The file ends before the data area or hash tree the superblock describes (or shrank under us). */
export class VerityTruncatedError extends VerityError {
  constructor(
    label: string,
    /** First byte that is needed but missing. */
    readonly offset: number,
    readonly needed: number,
    readonly fileSize: number,
  ) {
    super(label, `file is truncated: need ${needed} bytes at offset ${offset}, file has ${fileSize}`);
  }
}

/**
 * A block does not hash to the digest its parent records. `level` is -1 for a data block
 * (`index` is then the data block number) and 0..levels-1 for a hash block (`index` is the block
 * number inside that level; level 0 holds the digests of the data blocks).
 */
export class VerityMismatchError extends VerityError {
  constructor(
    label: string,
    readonly level: number,
    readonly index: number,
    /** Byte offset in the file of the block that failed (or of the bad byte, for spare areas). */
    readonly offset: number,
    detail?: string,
  ) {
    super(
      label,
      detail ??
        (level < 0
          ? `data block ${index} at offset ${offset} does not match its digest in hash level 0`
          : `hash block ${index} of level ${level} at offset ${offset} does not match its digest in the level above`),
    );
  }
}

/** A hash block has non-zero bytes where only padding may be ("Spare area is not zeroed"). */
export class VeritySpareAreaError extends VerityMismatchError {
  constructor(label: string, level: number, index: number, offset: number) {
    super(label, level, index, offset, `spare area of hash block ${index} of level ${level} is not zeroed at offset ${offset}`);
  }
}

/** The top of the tree does not hash to the trusted root hash. */
export class RootHashMismatchError extends VerityError {
  constructor(
    label: string,
    readonly expected: string,
    readonly actual: string,
    /** Byte offset of the block that was hashed (top hash block, or data block 0 when there is no tree). */
    readonly offset: number,
  ) {
    super(label, `root hash mismatch for block at offset ${offset}: expected ${expected}, computed ${actual}`);
  }
}

/**
 * A hash worker thread failed, crashed or could not start (too few file descriptors, no address
 * space for another isolate): says nothing about the data, and the same work can be done on the
 * calling thread.
 */
export class HashWorkerError extends VerityError {}

/** A caller-supplied argument is unusable (bad root-hash hex, read outside the data area, …). */
export class VerityArgumentError extends VerityError {}
