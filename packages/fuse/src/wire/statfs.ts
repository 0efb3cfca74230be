/** fuse_statfs_out = fuse_kstatfs (80 bytes). */
import { readU64Number, requireBytes, writeU32, writeU64 } from './bytes.js';

export const STATFS_OUT_SIZE = 80;

export interface Statfs {
  /** Total data blocks, in units of `frsize`. */
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

export function encodeStatfsOut(buf: Buffer, offset: number, s: Statfs): void {
  buf.fill(0, offset, offset + STATFS_OUT_SIZE);
  writeU64(buf, offset, s.blocks);
  writeU64(buf, offset + 8, s.bfree);
  writeU64(buf, offset + 16, s.bavail);
  writeU64(buf, offset + 24, s.files);
  writeU64(buf, offset + 32, s.ffree);
  writeU32(buf, offset + 40, s.bsize);
  writeU32(buf, offset + 44, s.namelen);
  writeU32(buf, offset + 48, s.frsize);
}

export function decodeStatfsOut(buf: Buffer, offset: number): Statfs {
  requireBytes(buf, offset, STATFS_OUT_SIZE, 'fuse_statfs_out');
  return {
    blocks: readU64Number(buf, offset),
    bfree: readU64Number(buf, offset + 8),
    bavail: readU64Number(buf, offset + 16),
    files: readU64Number(buf, offset + 24),
    ffree: readU64Number(buf, offset + 32),
    bsize: buf.readUInt32LE(offset + 40),
    namelen: buf.readUInt32LE(offset + 44),
    frsize: buf.readUInt32LE(offset + 48),
  };
}
