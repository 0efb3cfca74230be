import { DecompressError } from '../errors.js';
import { asDecompressError, checkBlockArgs, exactLength, overCap, type Decompressor } from './decompressor.js';
import type { FzstdModule, ZstdBinding } from './native.js';
import { scanZstdFrame } from './zstd-frame.js';

type DCtx = InstanceType<ZstdBinding['DCtx']>;

/**
 * Compressor id 6 (zstd): one zstd frame per block (mksquashfs: ZSTD_compressCCtx, so the frame
 * header carries the content size). scanZstdFrame first checks the block is exactly one frame and
 * reads that size; a size above the cap is rejected before decoding.
 *
 * Native path (zstd-napi): `DCtx.decompress(dst, src)` = ZSTD_decompressDCtx into a buffer we
 * allocate — exactly the content size when the header has it (zstd then also insists the frame
 * decodes to exactly that), else min(cap, bound from the block headers). The decoder cannot write
 * past `dst`, so memory is bounded even for frames without a size.
 *
 * Fallback (fzstd, pure JS, several times slower) when the addon cannot load: it allocates what the
 * header's content size says (or the window size when absent — up to 2 GiB), so it is only used on
 * frames with a content size (≤ cap); frames without one are rejected on that path.
 */
export class ZstdDecompressor implements Decompressor {
  readonly name = 'zstd';
  readonly implementation: 'zstd-napi' | 'fzstd';
  private readonly dctx: DCtx | undefined;

  constructor(native: ZstdBinding | undefined, private readonly fallback?: FzstdModule) {
    if (native === undefined && fallback === undefined) throw new TypeError('zstd: need zstd-napi or fzstd');
    this.dctx = native === undefined ? undefined : new native.DCtx();
    this.implementation = native === undefined ? 'fzstd' : 'zstd-napi';
  }

  decompress(src: Buffer, maxOutput: number): Buffer {
    checkBlockArgs(this.name, src, maxOutput);
    const frame = scanZstdFrame(src);
    const { contentSize } = frame;
    if (contentSize !== undefined && contentSize > maxOutput) throw overCap(this.name, maxOutput, contentSize);
    return this.dctx !== undefined ? this.native(this.dctx, src, contentSize ?? Math.min(maxOutput, frame.maxDecodedSize)) : this.portable(src, contentSize, frame.maxDecodedSize);
  }

  decompressInto(src: Buffer, dst: Buffer): number {
    const maxOutput = dst.length;
    checkBlockArgs(this.name, src, maxOutput);
    const frame = scanZstdFrame(src);
    const { contentSize } = frame;
    if (contentSize !== undefined && contentSize > maxOutput) throw overCap(this.name, maxOutput, contentSize);
    if (this.dctx === undefined) {
      const out = this.portable(src, contentSize, frame.maxDecodedSize);
      out.copy(dst);
      return out.length;
    }
    return this.nativeInto(this.dctx, src, dst.subarray(0, contentSize ?? Math.min(maxOutput, frame.maxDecodedSize)));
  }

  private native(dctx: DCtx, src: Buffer, capacity: number): Buffer {
    const dst = Buffer.allocUnsafe(capacity);
    return exactLength(dst, this.nativeInto(dctx, src, dst));
  }

  /** Decode into all of `dst` at most (zstd cannot write past it); the decoded length. */
  private nativeInto(dctx: DCtx, src: Buffer, dst: Buffer): number {
    let n: number;
    try {
      n = dctx.decompress(dst, src);
    } catch (err) {
      throw asDecompressError(this.name, err);
    }
    if (!Number.isSafeInteger(n) || n < 0 || n > dst.length) throw new DecompressError(this.name, `decoder reported ${n} bytes`);
    return n;
  }

  private portable(src: Buffer, contentSize: number | undefined, maxDecodedSize: number): Buffer {
    if (contentSize === undefined) throw new DecompressError(this.name, 'frame has no content size (needed by the fzstd fallback decoder)');
    if (contentSize === 0) {
      // fzstd would size its buffer by the window for a 0 content size; nothing to decode anyway.
      if (maxDecodedSize !== 0) throw new DecompressError(this.name, 'frame declares no content but holds data');
      return Buffer.alloc(0);
    }
    let out: Uint8Array;
    try {
      out = this.fallback!.decompress(src);
    } catch (err) {
      throw asDecompressError(this.name, err);
    }
    if (out.length !== contentSize) throw new DecompressError(this.name, `decoded ${out.length} bytes, header says ${contentSize}`);
    return Buffer.from(out.buffer, out.byteOffset, out.length);
  }
}
