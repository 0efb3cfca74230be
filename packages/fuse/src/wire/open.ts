/**
 * fuse_open_in/out (OPEN, OPENDIR), fuse_read_in (READ, READDIR, READDIRPLUS),
 * fuse_release_in (RELEASE, RELEASEDIR), fuse_flush_in, FOPEN_* flags.
 */
import { requireBytes, writeU64 } from './bytes.js';

export const OPEN_IN_SIZE = 8;
export const OPEN_OUT_SIZE = 16;
export const READ_IN_SIZE = 40;
export const RELEASE_IN_SIZE = 24;
export const FLUSH_IN_SIZE = 24;

/** open_out.open_flags bits. */
export const OpenFlag = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
  STREAM: 1 << 4,
  NOFLUSH: 1 << 5,
  PARALLEL_DIRECT_WRITES: 1 << 6,
  PASSTHROUGH: 1 << 7,
} as const;

export interface OpenIn {
  /** open(2) flags (O_RDONLY, O_DIRECTORY…). */
  readonly flags: number;
  readonly openFlags: number;
}

export function decodeOpenIn(body: Buffer): OpenIn {
  requireBytes(body, 0, OPEN_IN_SIZE, 'fuse_open_in');
  return { flags: body.readUInt32LE(0), openFlags: body.readUInt32LE(4) };
}

export interface OpenOut {
  readonly fh: bigint;
  readonly openFlags: number;
}

export function encodeOpenOut(buf: Buffer, offset: number, o: OpenOut): void {
  writeU64(buf, offset, o.fh);
  buf.writeUInt32LE(o.openFlags >>> 0, offset + 8);
  buf.writeInt32LE(0, offset + 12); // backing_id: no passthrough
}

export function decodeOpenOut(buf: Buffer, offset: number): OpenOut {
  requireBytes(buf, offset, OPEN_OUT_SIZE, 'fuse_open_out');
  return { fh: buf.readBigUInt64LE(offset), openFlags: buf.readUInt32LE(offset + 8) };
}

export interface ReadIn {
  readonly fh: bigint;
  /** File offset for READ, directory cookie for READDIR(PLUS). */
  readonly offset: bigint;
  readonly size: number;
  readonly readFlags: number;
  readonly lockOwner: bigint;
  readonly flags: number;
}

export function decodeReadIn(body: Buffer): ReadIn {
  requireBytes(body, 0, READ_IN_SIZE, 'fuse_read_in');
  return {
    fh: body.readBigUInt64LE(0),
    offset: body.readBigUInt64LE(8),
    size: body.readUInt32LE(16),
    readFlags: body.readUInt32LE(20),
    lockOwner: body.readBigUInt64LE(24),
    flags: body.readUInt32LE(32),
  };
}

export function encodeReadIn(buf: Buffer, offset: number, r: ReadIn): void {
  buf.writeBigUInt64LE(r.fh, offset);
  buf.writeBigUInt64LE(r.offset, offset + 8);
  buf.writeUInt32LE(r.size, offset + 16);
  buf.writeUInt32LE(r.readFlags, offset + 20);
  buf.writeBigUInt64LE(r.lockOwner, offset + 24);
  buf.writeUInt32LE(r.flags, offset + 32);
  buf.writeUInt32LE(0, offset + 36);
}

export interface ReleaseIn {
  readonly fh: bigint;
  readonly flags: number;
  readonly releaseFlags: number;
  readonly lockOwner: bigint;
}

export function decodeReleaseIn(body: Buffer): ReleaseIn {
  requireBytes(body, 0, RELEASE_IN_SIZE, 'fuse_release_in');
  return {
    fh: body.readBigUInt64LE(0),
    flags: body.readUInt32LE(8),
    releaseFlags: body.readUInt32LE(12),
    lockOwner: body.readBigUInt64LE(16),
  };
}
