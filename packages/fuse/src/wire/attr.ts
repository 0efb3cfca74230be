/** fuse_attr (88 B), fuse_entry_out (128 B), fuse_attr_out (104 B), fuse_getattr_in (16 B). */
import { readU64Number, requireBytes, type Timeout, writeS64, writeU32, writeU64 } from './bytes.js';

export const ATTR_SIZE = 88;
export const ENTRY_OUT_SIZE = 128;
export const ATTR_OUT_SIZE = 104;
export const GETATTR_IN_SIZE = 16;
/** getattr_flags bit: `fh` is valid (fstat on an open file). */
export const FUSE_GETATTR_FH = 1;

/**
 * File attributes as the kernel wants them (fuse_attr). Sizes and times are plain numbers
 * (must be safe integers); the node id space is bigint because it is an opaque u64.
 */
export interface Attr {
  /** Inode number shown as st_ino (need not equal the node id). */
  ino: bigint;
  size: number;
  /** Allocated size in 512-byte units (st_blocks). */
  blocks: number;
  /** Seconds since the epoch (may be negative) and nanoseconds (0..999999999). */
  atime: number;
  mtime: number;
  ctime: number;
  atimensec: number;
  mtimensec: number;
  ctimensec: number;
  /** S_IFMT type bits | permission bits. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  /** Device number for char/block devices, Linux new_encode_dev form (see makeDev). */
  rdev: number;
  /** Preferred I/O size (st_blksize); 0 ⇒ kernel default. Must be a power of two. */
  blksize: number;
}

/** Linux new_encode_dev: the u32 form of a device number used in fuse_attr.rdev. */
export function makeDev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

export function devMajor(rdev: number): number {
  return (rdev & 0xfff00) >>> 8;
}

export function devMinor(rdev: number): number {
  return ((rdev & 0xff) | ((rdev >>> 12) & 0xfff00)) >>> 0;
}

function checkNsec(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 999_999_999) throw new RangeError(`${what} ${value} out of range`);
  return value;
}

export function encodeAttr(buf: Buffer, offset: number, a: Attr): void {
  writeU64(buf, offset, a.ino);
  writeU64(buf, offset + 8, a.size);
  writeU64(buf, offset + 16, a.blocks);
  writeS64(buf, offset + 24, a.atime);
  writeS64(buf, offset + 32, a.mtime);
  writeS64(buf, offset + 40, a.ctime);
  buf.writeUInt32LE(checkNsec(a.atimensec, 'atimensec'), offset + 48);
  buf.writeUInt32LE(checkNsec(a.mtimensec, 'mtimensec'), offset + 52);
  buf.writeUInt32LE(checkNsec(a.ctimensec, 'ctimensec'), offset + 56);
  writeU32(buf, offset + 60, a.mode);
  writeU32(buf, offset + 64, a.nlink);
  writeU32(buf, offset + 68, a.uid);
  writeU32(buf, offset + 72, a.gid);
  writeU32(buf, offset + 76, a.rdev);
  writeU32(buf, offset + 80, a.blksize);
  buf.writeUInt32LE(0, offset + 84); // flags: no SUBMOUNT, no DAX
}

export function decodeAttr(buf: Buffer, offset: number): Attr {
  requireBytes(buf, offset, ATTR_SIZE, 'fuse_attr');
  return {
    ino: buf.readBigUInt64LE(offset),
    size: readU64Number(buf, offset + 8),
    blocks: readU64Number(buf, offset + 16),
    atime: Number(buf.readBigInt64LE(offset + 24)),
    mtime: Number(buf.readBigInt64LE(offset + 32)),
    ctime: Number(buf.readBigInt64LE(offset + 40)),
    atimensec: buf.readUInt32LE(offset + 48),
    mtimensec: buf.readUInt32LE(offset + 52),
    ctimensec: buf.readUInt32LE(offset + 56),
    mode: buf.readUInt32LE(offset + 60),
    nlink: buf.readUInt32LE(offset + 64),
    uid: buf.readUInt32LE(offset + 68),
    gid: buf.readUInt32LE(offset + 72),
    rdev: buf.readUInt32LE(offset + 76),
    blksize: buf.readUInt32LE(offset + 80),
  };
}

export interface EntryOut {
  /** 0 ⇒ negative entry (the name does not exist; cached for entryValid). */
  nodeid: bigint;
  generation: bigint;
  entryValid: Timeout;
  attrValid: Timeout;
  attr: Attr | undefined;
}

export function encodeEntryOut(buf: Buffer, offset: number, e: EntryOut): void {
  writeU64(buf, offset, e.nodeid);
  writeU64(buf, offset + 8, e.generation);
  writeU64(buf, offset + 16, e.entryValid.sec);
  writeU64(buf, offset + 24, e.attrValid.sec);
  buf.writeUInt32LE(e.entryValid.nsec, offset + 32);
  buf.writeUInt32LE(e.attrValid.nsec, offset + 36);
  if (e.attr) encodeAttr(buf, offset + 40, e.attr);
  else buf.fill(0, offset + 40, offset + 40 + ATTR_SIZE);
}

export function decodeEntryOut(buf: Buffer, offset: number): EntryOut {
  requireBytes(buf, offset, ENTRY_OUT_SIZE, 'fuse_entry_out');
  const nodeid = buf.readBigUInt64LE(offset);
  return {
    nodeid,
    generation: buf.readBigUInt64LE(offset + 8),
    entryValid: { sec: readU64Number(buf, offset + 16), nsec: buf.readUInt32LE(offset + 32) },
    attrValid: { sec: readU64Number(buf, offset + 24), nsec: buf.readUInt32LE(offset + 36) },
    attr: decodeAttr(buf, offset + 40),
  };
}

export function encodeAttrOut(buf: Buffer, offset: number, attrValid: Timeout, attr: Attr): void {
  writeU64(buf, offset, attrValid.sec);
  buf.writeUInt32LE(attrValid.nsec, offset + 8);
  buf.writeUInt32LE(0, offset + 12);
  encodeAttr(buf, offset + 16, attr);
}

export function decodeAttrOut(buf: Buffer, offset: number): { attrValid: Timeout; attr: Attr } {
  requireBytes(buf, offset, ATTR_OUT_SIZE, 'fuse_attr_out');
  return {
    attrValid: { sec: readU64Number(buf, offset), nsec: buf.readUInt32LE(offset + 8) },
    attr: decodeAttr(buf, offset + 16),
  };
}

export interface GetattrIn {
  readonly getattrFlags: number;
  readonly fh: bigint;
}

/** Kernels before 7.9 send no body; treat that as "no fh". */
export function decodeGetattrIn(body: Buffer): GetattrIn {
  if (body.length < GETATTR_IN_SIZE) return { getattrFlags: 0, fh: 0n };
  return { getattrFlags: body.readUInt32LE(0), fh: body.readBigUInt64LE(8) };
}
