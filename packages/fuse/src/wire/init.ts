/** FUSE_INIT: fuse_init_in (kernel → server) and fuse_init_out (server → kernel), flag bits. */
import { requireBytes, writeU32 } from './bytes.js';

/** INIT flags, bits 0..31 of `flags`; bits 32..63 travel in `flags2` when INIT_EXT is set. */
export const InitFlag = {
  ASYNC_READ: 1n << 0n,
  POSIX_LOCKS: 1n << 1n,
  FILE_OPS: 1n << 2n,
  ATOMIC_O_TRUNC: 1n << 3n,
  EXPORT_SUPPORT: 1n << 4n,
  BIG_WRITES: 1n << 5n,
  DONT_MASK: 1n << 6n,
  SPLICE_WRITE: 1n << 7n,
  SPLICE_MOVE: 1n << 8n,
  SPLICE_READ: 1n << 9n,
  FLOCK_LOCKS: 1n << 10n,
  HAS_IOCTL_DIR: 1n << 11n,
  AUTO_INVAL_DATA: 1n << 12n,
  DO_READDIRPLUS: 1n << 13n,
  READDIRPLUS_AUTO: 1n << 14n,
  ASYNC_DIO: 1n << 15n,
  WRITEBACK_CACHE: 1n << 16n,
  NO_OPEN_SUPPORT: 1n << 17n,
  PARALLEL_DIROPS: 1n << 18n,
  HANDLE_KILLPRIV: 1n << 19n,
  POSIX_ACL: 1n << 20n,
  ABORT_ERROR: 1n << 21n,
  MAX_PAGES: 1n << 22n,
  CACHE_SYMLINKS: 1n << 23n,
  NO_OPENDIR_SUPPORT: 1n << 24n,
  EXPLICIT_INVAL_DATA: 1n << 25n,
  MAP_ALIGNMENT: 1n << 26n,
  SUBMOUNTS: 1n << 27n,
  HANDLE_KILLPRIV_V2: 1n << 28n,
  SETXATTR_EXT: 1n << 29n,
  INIT_EXT: 1n << 30n,
  INIT_RESERVED: 1n << 31n,
  SECURITY_CTX: 1n << 32n,
  HAS_INODE_DAX: 1n << 33n,
  CREATE_SUPP_GROUP: 1n << 34n,
  HAS_EXPIRE_ONLY: 1n << 35n,
  DIRECT_IO_ALLOW_MMAP: 1n << 36n,
  PASSTHROUGH: 1n << 37n,
  NO_EXPORT_SUPPORT: 1n << 38n,
  HAS_RESEND: 1n << 39n,
  ALLOW_IDMAP: 1n << 40n,
  OVER_IO_URING: 1n << 41n,
  REQUEST_TIMEOUT: 1n << 42n,
} as const;

/** Names of the bits set in `flags`, for debug logs. */
export function initFlagNames(flags: bigint): string[] {
  return Object.entries(InitFlag)
    .filter(([, bit]) => (flags & bit) !== 0n)
    .map(([name]) => name);
}

export const KERNEL_VERSION = 7;
/** The protocol minor this server implements; every struct it uses is unchanged since 7.31. */
export const SERVER_MINOR = 31;
/** Kernel struct size before 7.36; since then 64. */
export const INIT_IN_SIZE_OLD = 16;
export const INIT_OUT_SIZE = 64;

export interface InitIn {
  readonly major: number;
  readonly minor: number;
  readonly maxReadahead: number;
  /** flags | flags2 << 32 (flags2 only when the kernel set INIT_EXT). */
  readonly flags: bigint;
}

export function decodeInitIn(body: Buffer): InitIn {
  // Protocols before 7.6 send only major+minor; reject them (they are from 2006).
  requireBytes(body, 0, INIT_IN_SIZE_OLD, 'fuse_init_in');
  let flags = BigInt(body.readUInt32LE(12));
  if ((flags & InitFlag.INIT_EXT) !== 0n && body.length >= 20) {
    flags |= BigInt(body.readUInt32LE(16)) << 32n;
  }
  return { major: body.readUInt32LE(0), minor: body.readUInt32LE(4), maxReadahead: body.readUInt32LE(8), flags };
}

export interface InitOut {
  readonly major: number;
  readonly minor: number;
  readonly maxReadahead: number;
  /** All 64 flag bits; the encoder splits them into flags/flags2. */
  readonly flags: bigint;
  readonly maxBackground: number;
  readonly congestionThreshold: number;
  readonly maxWrite: number;
  readonly timeGran: number;
  readonly maxPages: number;
}

/** Encodes the full 64-byte fuse_init_out; the caller sends only the prefix the kernel's minor knows. */
export function encodeInitOut(buf: Buffer, offset: number, o: InitOut): void {
  buf.fill(0, offset, offset + INIT_OUT_SIZE);
  writeU32(buf, offset, o.major);
  writeU32(buf, offset + 4, o.minor);
  writeU32(buf, offset + 8, o.maxReadahead);
  writeU32(buf, offset + 12, Number(o.flags & 0xffff_ffffn));
  buf.writeUInt16LE(o.maxBackground, offset + 16);
  buf.writeUInt16LE(o.congestionThreshold, offset + 18);
  writeU32(buf, offset + 20, o.maxWrite);
  writeU32(buf, offset + 24, o.timeGran);
  buf.writeUInt16LE(o.maxPages, offset + 28);
  // map_alignment (30) stays 0.
  writeU32(buf, offset + 32, Number((o.flags >> 32n) & 0xffff_ffffn));
}

export function decodeInitOut(buf: Buffer, offset = 0): InitOut {
  requireBytes(buf, offset, INIT_OUT_SIZE, 'fuse_init_out');
  return {
    major: buf.readUInt32LE(offset),
    minor: buf.readUInt32LE(offset + 4),
    maxReadahead: buf.readUInt32LE(offset + 8),
    flags: BigInt(buf.readUInt32LE(offset + 12)) | (BigInt(buf.readUInt32LE(offset + 32)) << 32n),
    maxBackground: buf.readUInt16LE(offset + 16),
    congestionThreshold: buf.readUInt16LE(offset + 18),
    maxWrite: buf.readUInt32LE(offset + 20),
    timeGran: buf.readUInt32LE(offset + 24),
    maxPages: buf.readUInt16LE(offset + 28),
  };
}

/** How many bytes of fuse_init_out a kernel speaking `kernelMinor` reads (it zero-fills the rest). */
export function initOutSizeFor(kernelMinor: number): number {
  if (kernelMinor < 5) return 8;
  if (kernelMinor < 23) return 24;
  return INIT_OUT_SIZE;
}
