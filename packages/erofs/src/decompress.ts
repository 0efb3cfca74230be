import { inflateRawSync } from 'node:zlib';
import { createDecompressor, lz4DecodeBlock, type Decompressor } from '@atomfs/squashfs';
import type { ByteSource } from './byte-source.js';
import { CorruptImageError, DecompressError, UnsupportedImageError } from './errors.js';
import { lz4DecodePartial } from './lz4-partial.js';
import { FeatureIncompat, type CompressionAlgorithm, type Superblock } from './superblock.js';
import { MAX_EXTENT_BYTES, type ZExtent } from './zmap.js';

/** squashfs compressor ids of the codecs shared with @atomfs/squashfs (native addons where they load). */
const SQUASHFS_LZ4 = 5;
const SQUASHFS_ZSTD = 6;
/** The shared codecs take at most this much output per call (squashfs's largest block). */
const SHARED_MAX_OUTPUT = 1 << 20;

/**
 * Turns a physical cluster into the bytes of its extent. The LZ4 and zstd decoders are
 * @atomfs/squashfs's (lz4-napi or its TypeScript block decoder; zstd-napi or fzstd); deflate is
 * node:zlib's raw inflate.
 */
export class ExtentDecoder {
  private lz4: Decompressor | undefined;
  private zstd: Decompressor | undefined;

  constructor(
    private readonly source: ByteSource,
    private readonly sb: Superblock,
  ) {}

  decode(ext: ZExtent): Buffer {
    const raw = this.source.read(ext.pa, ext.plen);
    if (ext.algorithm === undefined) return this.stored(ext, raw);
    if (!(this.sb.featureIncompat & FeatureIncompat.ZERO_PADDING)) return this.unpadded(ext, raw);
    const src = this.stripZeroPadding(ext, raw);
    let out: Buffer;
    try {
      if (ext.partialRef) return this.prefix(ext, src);
      out = this.decompress(ext.algorithm, src, ext.llen);
    } catch (err) {
      if (err instanceof UnsupportedImageError || err instanceof DecompressError) throw err;
      throw new DecompressError(ext.algorithm, err instanceof Error ? err.message : String(err), ext.pa, { cause: err });
    }
    // A cluster holds exactly its extent: fewer bytes would leave the rest of the extent undefined.
    if (out.length !== ext.llen) {
      throw new DecompressError(ext.algorithm, `decoded ${out.length} bytes, the extent at ${ext.la} has ${ext.llen}`, ext.pa);
    }
    return out;
  }

  /**
   * Plain clusters: the bytes as stored from the cluster's start, or (interlaced) rotated: the
   * extent's first `bs - la % bs` bytes (up to its in-block boundary) are the cluster's last ones,
   * the rest follow from the cluster's start.
   */
  private stored(ext: ZExtent, raw: Buffer): Buffer {
    if (!ext.interlaced) return Buffer.from(raw.subarray(0, ext.llen));
    const bs = this.sb.blockSize;
    const head = Math.min(bs - (ext.la % bs), ext.llen);
    const out = Buffer.allocUnsafe(ext.llen);
    raw.copy(out, 0, ext.plen - (bs - (ext.la % bs)), ext.plen - (bs - (ext.la % bs)) + head);
    raw.copy(out, head, 0, ext.llen - head);
    return out;
  }

  /**
   * A deduplicated extent uses the first llen bytes of a cluster that decodes to more: lz4 stops
   * once they are out (as the kernel's partial decoding); the others decode up to the largest
   * extent and keep the prefix.
   */
  private prefix(ext: ZExtent, src: Buffer): Buffer {
    const algorithm = ext.algorithm!;
    let out: Buffer;
    if (algorithm === 'lz4') {
      out = Buffer.allocUnsafe(ext.llen);
      if (lz4DecodePartial(src, out, ext.pa) !== ext.llen) throw new DecompressError('lz4', `cluster ends before the extent's ${ext.llen} bytes`, ext.pa);
      return out;
    }
    out = this.decompress(algorithm, src, Math.min(MAX_EXTENT_BYTES, SHARED_MAX_OUTPUT));
    if (out.length < ext.llen) throw new DecompressError(algorithm, `decoded ${out.length} bytes, the extent at ${ext.la} has ${ext.llen}`, ext.pa);
    return out.subarray(0, ext.llen);
  }

  /** Without 0padding only lz4 exists, decoded until the extent is full (the stream's end is not marked). */
  private unpadded(ext: ZExtent, raw: Buffer): Buffer {
    if (ext.algorithm !== 'lz4') throw new UnsupportedImageError(`${ext.algorithm} compression in an image without 0padding`);
    const out = Buffer.allocUnsafe(ext.llen);
    lz4DecodePartial(raw, out, ext.pa);
    return out;
  }

  /**
   * With 0padding the compressed stream is aligned to the END of its cluster, zeros before it:
   * the decoder then gets the exact stream. The zeros are looked for in the first block only,
   * as the kernel does.
   */
  private stripZeroPadding(ext: ZExtent, raw: Buffer): Buffer {
    const limit = Math.min(raw.length, this.sb.blockSize - (ext.pa % this.sb.blockSize));
    let margin = 0;
    while (margin < limit && raw[margin] === 0) margin++;
    if (margin >= raw.length) throw new CorruptImageError(`compressed cluster of the extent at ${ext.la} is all zeros`, ext.pa);
    return raw.subarray(margin);
  }

  private decompress(algorithm: CompressionAlgorithm, src: Buffer, llen: number): Buffer {
    switch (algorithm) {
      case 'lz4': {
        if (llen <= SHARED_MAX_OUTPUT) return (this.lz4 ??= createDecompressor(SQUASHFS_LZ4)).decompress(src, llen);
        const dst = Buffer.allocUnsafe(llen);
        return dst.subarray(0, lz4DecodeBlock(src, dst));
      }
      case 'zstd':
        if (llen > SHARED_MAX_OUTPUT) throw new UnsupportedImageError(`zstd extent of ${llen} bytes: this reader decodes at most ${SHARED_MAX_OUTPUT}`);
        return (this.zstd ??= createDecompressor(SQUASHFS_ZSTD)).decompress(src, llen);
      case 'deflate':
        return inflateRawSync(src, { maxOutputLength: llen });
      case 'lzma':
        throw new UnsupportedImageError('erofs image uses MicroLZMA compression, which this reader does not implement');
    }
  }
}
