import { DecompressError } from './errors.js';

/**
 * LZ4 block decoding that stops once `dst` is full (LZ4_decompress_safe_partial), for images
 * without 0padding: their compressed stream starts at the cluster's beginning and is followed by
 * whatever fills the cluster, so its end is known only by the output size. Images with 0padding
 * (every erofs-utils since 1.0 unless -Elegacy-compress) get the exact stream and go through
 * the shared block decoder of @atomfs/squashfs instead. Every length is checked against what
 * remains of src and dst before copying.
 */
export function lz4DecodePartial(src: Uint8Array, dst: Uint8Array, at: number): number {
  const ipEnd = src.length;
  const opEnd = dst.length;
  let ip = 0;
  let op = 0;
  const fail = (what: string): never => {
    throw new DecompressError('lz4', what, at);
  };
  while (op < opEnd) {
    if (ip >= ipEnd) fail(`input ends after ${op} of ${opEnd} bytes`);
    const token = src[ip++]!;
    let literals = token >>> 4;
    if (literals === 15) {
      for (;;) {
        if (ip >= ipEnd) fail('input ends in a literal length');
        const b = src[ip++]!;
        literals += b;
        if (b !== 255) break;
      }
    }
    if (literals > ipEnd - ip) fail(`${literals} literals at input ${ip} run past the end of the cluster`);
    const lit = Math.min(literals, opEnd - op);
    dst.set(src.subarray(ip, ip + lit), op);
    ip += literals;
    op += lit;
    if (op >= opEnd) break;
    if (ipEnd - ip < 2) fail('input ends in a match offset');
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op) fail(`match offset ${offset} at output ${op} is invalid`);
    let length = token & 15;
    if (length === 15) {
      for (;;) {
        if (ip >= ipEnd) fail('input ends in a match length');
        const b = src[ip++]!;
        length += b;
        if (b !== 255) break;
      }
    }
    length = Math.min(length + 4, opEnd - op);
    let from = op - offset;
    for (const stop = op + length; op < stop; ) dst[op++] = dst[from++]!;
  }
  return op;
}
