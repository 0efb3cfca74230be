/** fuse_lseek_in / fuse_lseek_out (LSEEK: SEEK_DATA and SEEK_HOLE only, the rest the kernel does itself). */
import { requireBytes, writeU64 } from './bytes.js';

export const LSEEK_IN_SIZE = 24;
export const LSEEK_OUT_SIZE = 8;

/** lseek(2) whence values the kernel forwards. */
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

export interface LseekIn {
  readonly fh: bigint;
  /** The caller's offset as the kernel's loff_t bits (a negative offset arrives as >= 2^63). */
  readonly offset: bigint;
  readonly whence: number;
}

export function decodeLseekIn(body: Buffer): LseekIn {
  requireBytes(body, 0, LSEEK_IN_SIZE, 'fuse_lseek_in');
  return { fh: body.readBigUInt64LE(0), offset: body.readBigUInt64LE(8), whence: body.readUInt32LE(16) };
}

export function encodeLseekOut(buf: Buffer, offset: number, position: number): void {
  writeU64(buf, offset, position);
}
