/** fuse_in_header (40 bytes, precedes every request) and fuse_out_header (16 bytes, every reply). */
import { requireBytes } from './bytes.js';

export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;

export interface InHeader {
  /** Whole request length including this header. */
  readonly len: number;
  readonly opcode: number;
  readonly unique: bigint;
  readonly nodeid: bigint;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /** Trailing extension length in 8-byte units (7.38+; 0 unless SECURITY_CTX etc. negotiated). */
  readonly totalExtlen: number;
}

export function decodeInHeader(buf: Buffer): InHeader {
  requireBytes(buf, 0, IN_HEADER_SIZE, 'fuse_in_header');
  return {
    len: buf.readUInt32LE(0),
    opcode: buf.readUInt32LE(4),
    unique: buf.readBigUInt64LE(8),
    nodeid: buf.readBigUInt64LE(16),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
    totalExtlen: buf.readUInt16LE(36),
  };
}

export function encodeInHeader(buf: Buffer, offset: number, h: InHeader): void {
  buf.writeUInt32LE(h.len, offset);
  buf.writeUInt32LE(h.opcode, offset + 4);
  buf.writeBigUInt64LE(h.unique, offset + 8);
  buf.writeBigUInt64LE(h.nodeid, offset + 16);
  buf.writeUInt32LE(h.uid, offset + 24);
  buf.writeUInt32LE(h.gid, offset + 28);
  buf.writeUInt32LE(h.pid, offset + 32);
  buf.writeUInt16LE(h.totalExtlen, offset + 36);
  buf.writeUInt16LE(0, offset + 38);
}

export interface OutHeader {
  /** Whole reply length including this header. */
  readonly len: number;
  /** 0 or a negative errno. */
  readonly error: number;
  readonly unique: bigint;
}

/** Writes fuse_out_header; `errno` is positive (or 0) and stored negated as the kernel wants. */
export function encodeOutHeader(buf: Buffer, offset: number, len: number, errno: number, unique: bigint): void {
  buf.writeUInt32LE(len, offset);
  buf.writeInt32LE(-errno, offset + 4);
  buf.writeBigUInt64LE(unique, offset + 8);
}

export function decodeOutHeader(buf: Buffer, offset = 0): OutHeader {
  requireBytes(buf, offset, OUT_HEADER_SIZE, 'fuse_out_header');
  return { len: buf.readUInt32LE(offset), error: buf.readInt32LE(offset + 4), unique: buf.readBigUInt64LE(offset + 8) };
}
