import { inflateSync } from 'node:zlib';
import { asDecompressError, checkBlockArgs, overCap, type Decompressor } from './decompressor.js';

/**
 * Compressor id 1 ("gzip"): every block is a zlib stream (RFC 1950: 2-byte header, deflate data,
 * adler32), which squashfs-tools decodes with zlib's `uncompress()`. node:zlib's sync inflate is
 * the fastest decoder available here and checks the adler32. `maxOutputLength` makes node stop
 * (ERR_BUFFER_TOO_LARGE) as soon as the output passes the cap, so memory stays bounded.
 */
export class GzipDecompressor implements Decompressor {
  readonly name = 'gzip';
  readonly implementation = 'node:zlib';

  decompress(src: Buffer, maxOutput: number): Buffer {
    checkBlockArgs(this.name, src, maxOutput);
    let out: Buffer;
    try {
      out = inflateSync(src, { maxOutputLength: maxOutput });
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') throw overCap(this.name, maxOutput);
      throw asDecompressError(this.name, err);
    }
    if (out.length > maxOutput) throw overCap(this.name, maxOutput, out.length);
    return out;
  }
}
