import { DecompressError } from '../errors.js';

/**
 * One squashfs block codec. `decompress` returns the decoded bytes of one block (metadata block,
 * data block or fragment block) and must never produce more than `maxOutput` bytes: a block that
 * would decode past it is corrupt and throws DecompressError (the caller passes 8192 for metadata
 * and block_size for data), so a hostile image cannot make us allocate without bound.
 */
export interface Decompressor {
  readonly name: CompressorName;
  /** Which code decodes (e.g. 'node:zlib', 'lz4-napi', 'ts'): for diagnostics and benchmarks. */
  readonly implementation?: string;
  decompress(src: Buffer, maxOutput: number): Buffer;
  /**
   * Optional: decode into `dst` (its length is the output cap) and return the decoded length.
   * Lets the data block cache decode into recycled buffers instead of fresh memory each block.
   */
  decompressInto?(src: Buffer, dst: Buffer): number;
}

export type CompressorName = 'gzip' | 'lzma' | 'lzo' | 'xz' | 'lz4' | 'zstd';

/** Superblock `compression` field values. */
export const COMPRESSOR_IDS: Readonly<Record<number, CompressorName>> = {
  1: 'gzip',
  2: 'lzma',
  3: 'lzo',
  4: 'xz',
  5: 'lz4',
  6: 'zstd',
};

/**
 * Largest `maxOutput` a decompressor accepts: squashfs' largest block size (SQUASHFS_FILE_MAX_SIZE,
 * 1 MiB). A larger cap is a caller bug, not bad image data, so it is a RangeError.
 */
export const MAX_BLOCK_OUTPUT = 1 << 20;

/** Validate the caller's output cap and the input before any library sees them. */
export function checkBlockArgs(name: CompressorName, src: Buffer, maxOutput: number): void {
  if (!Number.isSafeInteger(maxOutput) || maxOutput < 1 || maxOutput > MAX_BLOCK_OUTPUT) {
    throw new RangeError(`${name}: maxOutput must be an integer in 1..${MAX_BLOCK_OUTPUT}, got ${maxOutput}`);
  }
  if (src.length === 0) throw new DecompressError(name, 'empty block');
}

/**
 * Turn whatever a codec library threw into a DecompressError, so no raw library error (with its
 * own class, code and wording) leaks to callers. DecompressErrors pass through unchanged.
 */
export function asDecompressError(name: CompressorName, err: unknown): DecompressError {
  if (err instanceof DecompressError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new DecompressError(name, detail || 'decoder failed');
}

/** Error for a block whose decoded size is known (header or decoder) to exceed the cap. */
export function overCap(name: CompressorName, maxOutput: number, size?: number | bigint): DecompressError {
  const what = size === undefined ? 'more bytes than' : `${size} bytes, more than`;
  return new DecompressError(name, `decodes to ${what} the ${maxOutput}-byte limit`);
}

/**
 * Return the first `length` bytes of `buf` as a Buffer of exactly that length. Without a copy when
 * it is the whole buffer; otherwise copied, so a short block does not pin (or expose through
 * `.buffer`) the rest of a cap-sized, possibly uninitialised, allocation.
 */
export function exactLength(buf: Buffer, length: number): Buffer {
  if (length === buf.length) return buf;
  const out = Buffer.allocUnsafe(length);
  buf.copy(out, 0, 0, length);
  return out;
}
