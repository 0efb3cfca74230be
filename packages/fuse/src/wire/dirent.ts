/**
 * fuse_dirent (READDIR) and fuse_direntplus (READDIRPLUS) records. Records are 8-byte aligned;
 * `off` is the cookie of the NEXT entry, which the kernel hands back as READDIR.offset.
 */
import { FuseProtocolError } from '../errors.js';
import { decodeEntryOut, ENTRY_OUT_SIZE, type EntryOut, encodeEntryOut } from './attr.js';
import { requireBytes, writeU64 } from './bytes.js';

export const DIRENT_HEADER_SIZE = 24;
export const DIRENTPLUS_HEADER_SIZE = ENTRY_OUT_SIZE + DIRENT_HEADER_SIZE; // 152
/** The kernel rejects (EIO) names longer than this (FUSE_NAME_MAX). */
export const FUSE_NAME_MAX = 1024;

/** DT_* values: (st_mode & S_IFMT) >> 12. */
export const DirentType = {
  UNKNOWN: 0,
  FIFO: 1,
  CHR: 2,
  DIR: 4,
  BLK: 6,
  REG: 8,
  LNK: 10,
  SOCK: 12,
} as const;

export function direntTypeOf(mode: number): number {
  return (mode & 0o170000) >>> 12;
}

export interface Dirent {
  readonly ino: bigint;
  /** Cookie of the next entry. */
  readonly off: bigint;
  readonly type: number;
  readonly name: Buffer;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

export function direntSize(nameLength: number): number {
  return align8(DIRENT_HEADER_SIZE + nameLength);
}

export function direntplusSize(nameLength: number): number {
  return align8(DIRENTPLUS_HEADER_SIZE + nameLength);
}

/** Why the kernel would reject this name (it fails the whole reply with EIO), or undefined if fine. */
export function invalidDirentName(name: Buffer): string | undefined {
  if (name.length === 0) return 'empty name';
  if (name.length > FUSE_NAME_MAX) return `name longer than ${FUSE_NAME_MAX} bytes`;
  if (name.includes(0x2f)) return "name contains '/'";
  if (name.includes(0)) return 'name contains NUL';
  return undefined;
}

/** Writes one fuse_dirent at `offset` (caller checked it fits); returns the record length. */
export function encodeDirent(buf: Buffer, offset: number, d: Dirent): number {
  const len = direntSize(d.name.length);
  writeU64(buf, offset, d.ino);
  writeU64(buf, offset + 8, d.off);
  buf.writeUInt32LE(d.name.length, offset + 16);
  buf.writeUInt32LE(d.type, offset + 20);
  d.name.copy(buf, offset + DIRENT_HEADER_SIZE);
  buf.fill(0, offset + DIRENT_HEADER_SIZE + d.name.length, offset + len);
  return len;
}

/** Writes one fuse_direntplus (entry_out + dirent); returns the record length. */
export function encodeDirentplus(buf: Buffer, offset: number, entry: EntryOut, d: Dirent): number {
  encodeEntryOut(buf, offset, entry);
  return ENTRY_OUT_SIZE + encodeDirent(buf, offset + ENTRY_OUT_SIZE, d);
}

function decodeDirentAt(buf: Buffer, offset: number): { dirent: Dirent; length: number } {
  requireBytes(buf, offset, DIRENT_HEADER_SIZE, 'fuse_dirent');
  const namelen = buf.readUInt32LE(offset + 16);
  if (namelen > FUSE_NAME_MAX) throw new FuseProtocolError(`fuse_dirent: namelen ${namelen} too long`);
  requireBytes(buf, offset + DIRENT_HEADER_SIZE, namelen, 'fuse_dirent name');
  return {
    dirent: {
      ino: buf.readBigUInt64LE(offset),
      off: buf.readBigUInt64LE(offset + 8),
      type: buf.readUInt32LE(offset + 20),
      name: buf.subarray(offset + DIRENT_HEADER_SIZE, offset + DIRENT_HEADER_SIZE + namelen),
    },
    length: direntSize(namelen),
  };
}

/** Parses a READDIR reply payload (used by tests and debugging). */
export function decodeDirents(buf: Buffer): Dirent[] {
  const out: Dirent[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const { dirent, length } = decodeDirentAt(buf, pos);
    out.push(dirent);
    pos += length;
  }
  return out;
}

/** Parses a READDIRPLUS reply payload. */
export function decodeDirentplusList(buf: Buffer): { entry: EntryOut; dirent: Dirent }[] {
  const out: { entry: EntryOut; dirent: Dirent }[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const entry = decodeEntryOut(buf, pos);
    const { dirent, length } = decodeDirentAt(buf, pos + ENTRY_OUT_SIZE);
    out.push({ entry, dirent });
    pos += ENTRY_OUT_SIZE + length;
  }
  return out;
}

