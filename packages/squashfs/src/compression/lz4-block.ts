/** Thrown by lz4DecodeBlock for malformed input; wrapped into DecompressError by the caller. */
export class Lz4FormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Lz4FormatError';
  }
}

/** Minimum match length of LZ4: the 4-bit field stores length - 4. */
const MIN_MATCH = 4;

/**
 * Decode one raw LZ4 block (no frame, no size prefix; what `LZ4_decompress_safe` takes) from `src`
 * into `dst`; returns the number of bytes written. A block is a series of sequences:
 *   token (literal length << 4 | match length - 4), [length extension bytes, each 255 = continue],
 *   literals, u16le match offset (1..bytes produced), [match length extension bytes]
 * and ends with a sequence holding only literals, exactly at the end of `src`.
 * Every length is checked against what remains of `src` and of `dst` before copying, so nothing is
 * read or written out of bounds; an offset of 0 or past the start of the output is an error.
 */
export function lz4DecodeBlock(src: Uint8Array, dst: Uint8Array): number {
  const ipEnd = src.length;
  const opEnd = dst.length;
  let ip = 0;
  let op = 0;
  if (ipEnd === 0) throw new Lz4FormatError('empty block');

  for (;;) {
    // ip < ipEnd holds here: checked at the start and after every match.
    const token = src[ip++]!;

    let literals = token >>> 4;
    if (literals === 15) {
      for (;;) {
        if (ip >= ipEnd) throw new Lz4FormatError('input ends in a literal length');
        const b = src[ip++]!;
        literals += b;
        if (b !== 255) break;
      }
    }
    if (literals > ipEnd - ip) throw new Lz4FormatError(`${literals} literals at input ${ip} run past the end of the block`);
    if (literals > opEnd - op) throw new Lz4FormatError(`${literals} literals at output ${op} exceed the ${opEnd}-byte output limit`);
    if (literals > 16) {
      dst.set(src.subarray(ip, ip + literals), op);
      ip += literals;
      op += literals;
    } else {
      for (const stop = ip + literals; ip < stop; ) dst[op++] = src[ip++]!;
    }

    if (ip === ipEnd) return op; // the last sequence has literals only

    if (ipEnd - ip < 2) throw new Lz4FormatError('input ends in a match offset');
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op) throw new Lz4FormatError(`match offset ${offset} at output ${op} is invalid`);

    let length = token & 15;
    if (length === 15) {
      for (;;) {
        if (ip >= ipEnd) throw new Lz4FormatError('input ends in a match length');
        const b = src[ip++]!;
        length += b;
        if (b !== 255) break;
      }
    }
    length += MIN_MATCH;
    if (length > opEnd - op) throw new Lz4FormatError(`match of ${length} at output ${op} exceeds the ${opEnd}-byte output limit`);
    let from = op - offset;
    if (offset >= length && length > 32) {
      dst.copyWithin(op, from, from + length);
      op += length;
    } else {
      // Overlapping matches (offset < length) repeat the last `offset` bytes: copy forwards.
      for (const stop = op + length; op < stop; ) dst[op++] = dst[from++]!;
    }

    // LZ4 blocks end with literals: a block ending right after a match is truncated.
    if (ip >= ipEnd) throw new Lz4FormatError('block ends after a match, without the final literals');
  }
}
