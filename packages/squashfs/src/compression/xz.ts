import { DecompressError } from '../errors.js';
import { asDecompressError, checkBlockArgs, type Decompressor } from './decompressor.js';
import type { LzmaModule } from './native.js';
import { scanXzStream } from './xz-stream.js';

/**
 * Compressor id 4 (xz): each block is a complete .xz stream (CRC32 check), possibly with a BCJ
 * filter before LZMA2 (-Xbcj). @napi-rs/lzma 1.5.x is the only decoder here that reads every BCJ
 * filter, but its one-shot API takes no output limit; so before decoding, scanXzStream walks the
 * container and the LZMA2 chunk headers to get the exact output size and rejects the block if it
 * exceeds the cap (see xz-stream.ts for why that bound holds), or if the stream has trailing data,
 * several streams, or a dictionary beyond squashfs-tools' memory limit. The decoded length must
 * then equal the walked size.
 */
export class XzDecompressor implements Decompressor {
  readonly name = 'xz';
  readonly implementation = '@napi-rs/lzma';

  constructor(private readonly lib: LzmaModule) {}

  decompress(src: Buffer, maxOutput: number): Buffer {
    checkBlockArgs(this.name, src, maxOutput);
    const stream = scanXzStream(src, maxOutput);
    let out: Buffer;
    try {
      out = this.lib.xz.decompressSync(src);
    } catch (err) {
      throw asDecompressError(this.name, err);
    }
    if (out.length !== stream.uncompressedSize) {
      throw new DecompressError(this.name, `decoded ${out.length} bytes, the LZMA2 chunks hold ${stream.uncompressedSize}`);
    }
    return out;
  }
}
