/**
 * One squashfs block codec. `decompress` returns the decoded bytes of one block (metadata block,
 * data block or fragment block) and must never produce more than `maxOutput` bytes: a block that
 * would decode past it is corrupt and throws DecompressError (the caller passes 8192 for metadata
 * and block_size for data), so a hostile image cannot make us allocate without bound.
 */
export interface Decompressor {
  readonly name: CompressorName;
  decompress(src: Buffer, maxOutput: number): Buffer;
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
