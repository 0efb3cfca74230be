import { DecompressError } from '../errors.js';
import { asDecompressError, checkBlockArgs, exactLength, type Decompressor } from './decompressor.js';

/** Thrown by lzo1xDecompressSafe; its message names the LZO error code it corresponds to. */
export class LzoFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LzoFormatError';
  }
}

/** Offset bias of the 3-byte match that may follow a literal run (M2_MAX_OFFSET in LZO). */
const M2_MAX_OFFSET = 0x0800;
/** Offset bias of M4 matches. */
const M4_OFFSET_BIAS = 0x4000;
/** The only end-of-stream instruction LZO1X compressors emit: an M4 match of distance 0 (bytes 11 00 00). */
const EOF_INSTRUCTION = 0x11;

/**
 * LZO1X decoder with the semantics of `lzo1x_decompress_safe`: decodes a raw LZO1X stream (no
 * header, no length) from `src` into `dst` and returns the number of bytes written. Every read is
 * checked against the end of `src` ("input overrun"), every write against the end of `dst`
 * ("output overrun"), every match against the bytes already produced ("lookbehind overrun"); the
 * stream must end with the end-of-stream instruction exactly at the end of `src` (trailing bytes
 * are "input not consumed", an error in squashfs-tools). Nothing is ever written past `dst.length`.
 *
 * Instruction set (LZO1X, as in the Linux kernel's lzo1x_decompress_safe.c), where `state` is
 * the number of literals that followed the previous instruction (0..3), or 4 after a literal run:
 *   0..15,  state 0    literal run: length t + 3 (t = 0: 18 + extension bytes)
 *   0..15,  state 1..3 2-byte match, distance 1 + (t >> 2) + (next << 2)
 *   0..15,  state 4    3-byte match, distance 2049 + (t >> 2) + (next << 2)
 *   16..31  M4 match, distance 16384 + ((t & 8) << 11) + 14-bit field, length (t & 7) + 2;
 *           distance 16384 exactly (field 0, bit 8 clear) marks the end of the stream
 *   32..63  M3 match, distance 1 + 14-bit field, length (t & 31) + 2
 *   64..255 M2 match, distance 1 + ((t >> 2) & 7) + (next << 3), length (t >> 5) + 1
 * The low 2 bits of a match's last distance byte (or of t for M1/M2) give the literals that follow.
 * A zero length field is extended by 255 per following zero byte plus the first non-zero byte.
 */
export function lzo1xDecompressSafe(src: Uint8Array, dst: Uint8Array): number {
  // Hot loop: no closures over ip/op (V8 would move them into a heap context), hence the
  // repeated literal-copy and length-extension code.
  const ipEnd = src.length;
  const opEnd = dst.length;
  let ip = 0;
  let op = 0;
  let state = 0;

  if (ipEnd < 3) throw new LzoFormatError('input overrun: stream shorter than the end-of-stream marker');

  // A first byte > 17 encodes an initial literal run of (byte - 17) without a separate length.
  if (src[0]! > 17) {
    const n = src[0]! - 17;
    ip = 1;
    if (n > ipEnd - ip) throw new LzoFormatError(`input overrun: ${n} literals at input ${ip}`);
    if (n > opEnd - op) throw new LzoFormatError(`output overrun: ${n} literals at output ${op}`);
    dst.set(src.subarray(ip, ip + n), op);
    ip += n;
    op += n;
    state = n < 4 ? n : 4;
  }

  for (;;) {
    if (ip >= ipEnd) throw new LzoFormatError('input overrun: stream ends without the end-of-stream marker');
    const t = src[ip++]!;
    let distance: number;
    let length: number;
    let next: number;

    if (t < 16) {
      if (state === 0) {
        let n = t;
        if (n === 0) {
          n = 15;
          for (;;) {
            if (ip >= ipEnd) throw new LzoFormatError('input overrun in a length extension');
            const b = src[ip++]!;
            n += b;
            if (b !== 0) break;
            n += 255;
          }
        }
        n += 3;
        if (n > ipEnd - ip) throw new LzoFormatError(`input overrun: ${n} literals at input ${ip}`);
        if (n > opEnd - op) throw new LzoFormatError(`output overrun: ${n} literals at output ${op}`);
        if (n > 16) {
          dst.set(src.subarray(ip, ip + n), op);
          ip += n;
          op += n;
        } else {
          for (const stop = ip + n; ip < stop; ) dst[op++] = src[ip++]!;
        }
        state = 4;
        continue;
      }
      if (ip >= ipEnd) throw new LzoFormatError('input overrun in a short match');
      const h = src[ip++]!;
      if (state === 4) {
        distance = 1 + M2_MAX_OFFSET + (t >> 2) + (h << 2);
        length = 3;
      } else {
        distance = 1 + (t >> 2) + (h << 2);
        length = 2;
      }
      next = t & 3;
    } else if (t >= 64) {
      if (ip >= ipEnd) throw new LzoFormatError('input overrun in an M2 match');
      const h = src[ip++]!;
      distance = 1 + ((t >> 2) & 7) + (h << 3);
      length = (t >> 5) + 1;
      next = t & 3;
    } else {
      const m3 = t >= 32;
      length = m3 ? t & 31 : t & 7;
      if (length === 0) {
        length = m3 ? 31 : 7;
        for (;;) {
          if (ip >= ipEnd) throw new LzoFormatError('input overrun in a length extension');
          const b = src[ip++]!;
          length += b;
          if (b !== 0) break;
          length += 255;
        }
      }
      length += 2;
      if (ipEnd - ip < 2) throw new LzoFormatError('input overrun in a match distance');
      const lo = src[ip]!;
      const hi = src[ip + 1]!;
      ip += 2;
      next = lo & 3;
      if (m3) {
        distance = 1 + (lo >> 2) + (hi << 6);
      } else {
        distance = ((t & 8) << 11) + (lo >> 2) + (hi << 6);
        if (distance === 0) {
          // End of stream. Like the kernel's decoder, accept only the marker compressors write.
          if (t !== EOF_INSTRUCTION) throw new LzoFormatError(`malformed end-of-stream instruction 0x${t.toString(16)}`);
          if (ip !== ipEnd) throw new LzoFormatError(`input not consumed: ${ipEnd - ip} bytes after the end-of-stream marker`);
          return op;
        }
        distance += M4_OFFSET_BIAS;
      }
    }

    if (distance > op) throw new LzoFormatError(`lookbehind overrun: distance ${distance} at output ${op}`);
    if (length > opEnd - op) throw new LzoFormatError(`output overrun: match of ${length} at output ${op}`);
    let from = op - distance;
    if (distance >= length && length > 32) {
      dst.copyWithin(op, from, from + length);
      op += length;
    } else {
      // Overlapping (distance < length) matches repeat the last `distance` bytes: copy forwards.
      for (const stop = op + length; op < stop; ) dst[op++] = dst[from++]!;
    }

    // 0..3 literals follow the match.
    state = next;
    if (next !== 0) {
      if (next > ipEnd - ip) throw new LzoFormatError(`input overrun: ${next} literals at input ${ip}`);
      if (next > opEnd - op) throw new LzoFormatError(`output overrun: ${next} literals at output ${op}`);
      for (const stop = ip + next; ip < stop; ) dst[op++] = src[ip++]!;
    }
  }
}

/**
 * Compressor id 3 (lzo): raw LZO1X stream, decoded by our own lzo1x_decompress_safe port into a
 * cap-sized buffer, whatever LZO1X variant (lzo1x_1 .. lzo1x_999) compressed it.
 */
export class LzoDecompressor implements Decompressor {
  readonly name = 'lzo';
  readonly implementation = 'ts';

  decompress(src: Buffer, maxOutput: number): Buffer {
    checkBlockArgs(this.name, src, maxOutput);
    const dst = Buffer.allocUnsafe(maxOutput);
    let n: number;
    try {
      n = lzo1xDecompressSafe(src, dst);
    } catch (err) {
      throw err instanceof LzoFormatError ? new DecompressError(this.name, err.message) : asDecompressError(this.name, err);
    }
    return exactLength(dst, n);
  }
}
