/**
 * Little-endian helpers shared by the wire structs. The FUSE ABI is the host's byte order;
 * every platform Node runs FUSE on here is little-endian, so the structs are fixed LE.
 */
import { FuseProtocolError } from '../errors.js';

const TWO_32 = 0x1_0000_0000;

/** Throws when `buf` has fewer than `need` bytes at `offset` (a short request from the kernel). */
export function requireBytes(buf: Buffer, offset: number, need: number, what: string): void {
  if (offset < 0 || offset + need > buf.length) {
    throw new FuseProtocolError(`${what}: need ${need} bytes at offset ${offset}, request has ${buf.length}`);
  }
}

/**
 * Writes an unsigned 64-bit value. Plain numbers take the fast path (two u32 stores); a bigint
 * is reduced modulo 2^64 so that e.g. -1n becomes 0xffff_ffff_ffff_ffff as in C.
 */
export function writeU64(buf: Buffer, offset: number, value: number | bigint): void {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`u64 field: ${value} is not a non-negative safe integer`);
    }
    buf.writeUInt32LE(value % TWO_32, offset);
    buf.writeUInt32LE(Math.floor(value / TWO_32), offset + 4);
  } else {
    // DataView.setBigUint64 stores without the intermediate bigints (value & mask, value >> 32n)
    // that Buffer.writeBigUInt64LE allocates: node ids and cookies are bigints, ~4 per
    // READDIRPLUS entry, and a cold walk of 20,000 entries was GC-heavy.
    u64View.setBigUint64(0, value >= 0n && value <= U64_MAX ? value : BigInt.asUintN(64, value), true);
    for (let i = 0; i < 8; i++) buf[offset + i] = u64Bytes[i]!;
  }
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const u64Bytes = new Uint8Array(8);
const u64View = new DataView(u64Bytes.buffer);

/** Writes a signed 64-bit value (timestamps before 1970 are negative). */
export function writeS64(buf: Buffer, offset: number, value: number): void {
  if (!Number.isSafeInteger(value)) throw new RangeError(`s64 field: ${value} is not a safe integer`);
  if (value >= 0) {
    buf.writeUInt32LE(value % TWO_32, offset);
    buf.writeUInt32LE(Math.floor(value / TWO_32), offset + 4);
  } else {
    buf.writeBigInt64LE(BigInt(value), offset);
  }
}

/** Reads an unsigned 64-bit value as a number (exact below 2^53, rounded above). */
export function readU64Number(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4) * TWO_32;
}

/** Writes an unsigned 32-bit value, rejecting anything out of range rather than wrapping silently. */
export function writeU32(buf: Buffer, offset: number, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new RangeError(`u32 field: ${value} is out of range`);
  }
  buf.writeUInt32LE(value, offset);
}

/** Returns the bytes of a NUL-terminated string starting at `offset` (without the NUL). */
export function readCString(buf: Buffer, offset: number, what: string): Buffer {
  const end = buf.indexOf(0, offset);
  if (end < 0) throw new FuseProtocolError(`${what}: name is not NUL-terminated`);
  return buf.subarray(offset, end);
}

/** Seconds as a (whole seconds, nanoseconds) pair for the *_valid / *_valid_nsec fields. */
export interface Timeout {
  readonly sec: number;
  readonly nsec: number;
}

/** Splits a non-negative number of seconds (fractions allowed) into a Timeout; Infinity ⇒ ~2^53 s. */
export function toTimeout(seconds: number): Timeout {
  if (Number.isNaN(seconds) || seconds < 0) throw new RangeError(`timeout must be >= 0 seconds, got ${seconds}`);
  if (seconds >= Number.MAX_SAFE_INTEGER) return { sec: Number.MAX_SAFE_INTEGER, nsec: 0 };
  const sec = Math.floor(seconds);
  const nsec = Math.min(999_999_999, Math.round((seconds - sec) * 1e9));
  return { sec, nsec };
}
