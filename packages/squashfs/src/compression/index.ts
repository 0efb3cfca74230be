import { UnsupportedImageError } from '../errors.js';
import { COMPRESSOR_IDS, type Decompressor } from './decompressor.js';
import { GzipDecompressor } from './gzip.js';
import { Lz4Decompressor } from './lz4.js';
import { LzmaDecompressor } from './lzma.js';
import { LzoDecompressor } from './lzo.js';
import { loadFzstd, loadLz4, loadLzma, loadZstd } from './native.js';
import { XzDecompressor } from './xz.js';
import { ZstdDecompressor } from './zstd.js';

/** Node's module errors append a multi-line "Require stack": messages stay one line. */
function firstLine(err: Error): string {
  return err.message.split('\n')[0] ?? '';
}

export { COMPRESSOR_IDS, MAX_BLOCK_OUTPUT, type CompressorName, type Decompressor } from './decompressor.js';
export { GzipDecompressor } from './gzip.js';
export { Lz4Decompressor } from './lz4.js';
export { lz4DecodeBlock } from './lz4-block.js';
export { LzmaDecompressor } from './lzma.js';
export { lzo1xDecompressSafe, LzoDecompressor } from './lzo.js';
export { XzDecompressor } from './xz.js';
export { scanXzStream } from './xz-stream.js';
export { ZstdDecompressor } from './zstd.js';
export { scanZstdFrame } from './zstd-frame.js';

/**
 * The decompressor for a superblock `compression` id. `options` is the compression-options
 * payload (flag 0x0400); no decoder needs it, so it is accepted and ignored.
 * Native addons are used where they exist and load (lz4-napi, zstd-napi, @napi-rs/lzma); lz4 and
 * zstd fall back to portable decoders, lzma and xz have none and then throw UnsupportedImageError.
 */
export function createDecompressor(compressionId: number, options?: Buffer): Decompressor {
  void options;
  const name = COMPRESSOR_IDS[compressionId];
  switch (name) {
    case 'gzip':
      return new GzipDecompressor();
    case 'lzo':
      return new LzoDecompressor();
    case 'lzma':
    case 'xz': {
      const lib = loadLzma();
      if (!lib.ok) throw new UnsupportedImageError(`${name} images need @napi-rs/lzma, which does not load: ${firstLine(lib.error)}`);
      return name === 'xz' ? new XzDecompressor(lib.module) : new LzmaDecompressor(lib.module);
    }
    case 'lz4': {
      const lib = loadLz4();
      return new Lz4Decompressor(lib.ok ? lib.module : undefined);
    }
    case 'zstd': {
      const native = loadZstd();
      if (native.ok) return new ZstdDecompressor(native.module);
      const fallback = loadFzstd();
      if (!fallback.ok) throw new UnsupportedImageError(`zstd images need zstd-napi or fzstd; neither loads: ${firstLine(native.error)}; ${firstLine(fallback.error)}`);
      return new ZstdDecompressor(undefined, fallback.module);
    }
    default:
      throw new UnsupportedImageError(`unknown compressor id ${compressionId}`);
  }
}
