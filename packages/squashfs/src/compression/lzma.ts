import { DecompressError } from '../errors.js';
import { asDecompressError, checkBlockArgs, overCap, type Decompressor } from './decompressor.js';
import type { LzmaModule } from './native.js';

/** Header of a legacy `.lzma` ("LZMA alone") stream as squashfs-tools writes it. */
export interface LzmaAloneHeader {
  /** lc/lp/pb packed as (pb * 5 + lp) * 9 + lc; valid values are < 225. */
  properties: number;
  dictionarySize: number;
  /** squashfs-tools overwrites the encoder's "unknown" (all 0xFF) with the real decoded size. */
  uncompressedSize: bigint;
}

export const LZMA_HEADER_SIZE = 13;

/**
 * squashfs-tools decodes with a liblzma memory limit of 32 MiB (MEMLIMIT in lzma_xz_wrapper.c),
 * which in practice bounds the dictionary; refuse larger ones the same way.
 */
export const LZMA_MAX_DICTIONARY = 32 << 20;

export function parseLzmaAloneHeader(src: Buffer): LzmaAloneHeader {
  if (src.length < LZMA_HEADER_SIZE) {
    throw new DecompressError('lzma', `block of ${src.length} bytes is shorter than the ${LZMA_HEADER_SIZE}-byte header`);
  }
  return { properties: src[0]!, dictionarySize: src.readUInt32LE(1), uncompressedSize: src.readBigUInt64LE(5) };
}

/**
 * Compressor id 2 (legacy LZMA1, not supported by the kernel), decoded with @napi-rs/lzma.
 *
 * squashfs-tools replaces the header's size with 0xFF×8 ("unknown", end marker required) before
 * decoding, because liblzma's alone decoder insists on that. We deliberately do NOT: with the size
 * unknown the decoder runs until the end marker and a hostile block of a few KiB can expand to
 * gigabytes (measured: a 7.5 KB stream to 50 MiB; LZMA reaches ~7500:1), and @napi-rs/lzma's sync
 * API takes no output limit. Given the real size, lzma-rust2 stops there. So: read the size,
 * reject it if it exceeds the cap (before any decoding), pass the block unchanged (no copy), and
 * require exactly that many bytes back. squashfs-tools returns exactly `size` bytes too, so valid
 * blocks decode identically.
 *
 * The price: the end marker is no longer checked, so damage in the last few percent of a stream
 * (and a cut last byte) can decode to wrong data silently (rarely: a few single-byte flips in a
 * thousand over a whole block), where squashfs-tools would fail. lz4, lzo and zstd blocks have no check at
 * all, and atomfs verifies images with dm-verity, so bounded memory wins.
 */
export class LzmaDecompressor implements Decompressor {
  readonly name = 'lzma';
  readonly implementation = '@napi-rs/lzma';

  constructor(private readonly lib: LzmaModule) {}

  decompress(src: Buffer, maxOutput: number): Buffer {
    checkBlockArgs(this.name, src, maxOutput);
    const header = parseLzmaAloneHeader(src);
    if (header.properties >= 225) throw new DecompressError(this.name, `invalid properties byte ${header.properties}`);
    if (header.uncompressedSize > BigInt(maxOutput)) {
      throw overCap(this.name, maxOutput, header.uncompressedSize === 0xffff_ffff_ffff_ffffn ? undefined : header.uncompressedSize);
    }
    if (header.dictionarySize > LZMA_MAX_DICTIONARY) {
      throw new DecompressError(this.name, `dictionary of ${header.dictionarySize} bytes exceeds ${LZMA_MAX_DICTIONARY}`);
    }
    const size = Number(header.uncompressedSize);
    let out: Buffer;
    try {
      out = this.lib.lzma.decompressSync(src);
    } catch (err) {
      throw asDecompressError(this.name, err);
    }
    if (out.length !== size) throw new DecompressError(this.name, `decoded ${out.length} bytes, header says ${size}`);
    return out;
  }
}
