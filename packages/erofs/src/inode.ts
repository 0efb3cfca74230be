import { S_IFMT, type NodeKind } from '@atomfs/tree';
import type { ByteSource } from './byte-source.js';
import { CorruptImageError, UnsupportedImageError } from './errors.js';
import type { Superblock } from './superblock.js';

/** i_format bits 1-3: how an inode's data is laid out. */
export const DataLayout = {
  FLAT_PLAIN: 0,
  COMPRESSED_FULL: 1,
  FLAT_INLINE: 2,
  COMPRESSED_COMPACT: 3,
  CHUNK_BASED: 4,
} as const;

export type InodeKind = NodeKind;

const KIND_BY_IFMT: Record<number, InodeKind> = {
  0o100000: 'file',
  0o040000: 'dir',
  0o120000: 'symlink',
  0o060000: 'block',
  0o020000: 'char',
  0o010000: 'fifo',
  0o140000: 'socket',
};

/** Inodes sit in 32-byte slots: a nid is the slot number from the metadata start. */
export const INODE_SLOT = 32;
const COMPACT_SIZE = 32;
const EXTENDED_SIZE = 64;

/** One inode as stored (erofs_inode_compact / erofs_inode_extended), with what follows from it. */
export interface ErofsInode {
  nid: number;
  /** Byte offset of the inode in the image. */
  pos: number;
  kind: InodeKind;
  extended: boolean;
  layout: number;
  mode: number;
  nlink: number;
  size: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
  /** The raw i_u field: start block, rdev, compressed block count or chunk format. */
  u: number;
  /** Bytes of the xattr body after the inode (0: none). */
  xattrSize: number;
  /** Where the inline data (tail block, chunk indexes, compression indexes) starts. */
  dataPos: number;
}

/** Size of the xattr body for an i_xattr_icount: a 12-byte header, then 4-byte slots. */
export function xattrBodySize(icount: number): number {
  return icount === 0 ? 0 : 12 + (icount - 1) * 4;
}

/** Read the inode `nid`. Every field that later drives a read is checked here or where it is used. */
export function readInode(source: ByteSource, sb: Superblock, nid: number): ErofsInode {
  const pos = sb.metaBlockAddr * sb.blockSize + nid * INODE_SLOT;
  if (!Number.isSafeInteger(pos) || pos + COMPACT_SIZE > source.size) {
    throw new CorruptImageError(`inode ${nid} lies outside the image (offset ${pos})`, undefined);
  }
  const head = source.read(pos, Math.min(EXTENDED_SIZE, source.size - pos));
  const format = head.readUInt16LE(0);
  const extended = (format & 1) === 1;
  const layout = (format >> 1) & 7;
  if (format >> 4 !== 0) throw new UnsupportedImageError(`inode ${nid} at offset ${pos} has unknown format bits 0x${format.toString(16)}`);
  if (layout > DataLayout.CHUNK_BASED) throw new UnsupportedImageError(`inode ${nid} at offset ${pos} has unknown data layout ${layout}`);
  if (extended && head.length < EXTENDED_SIZE) throw new CorruptImageError(`extended inode ${nid} is cut off by the end of the image`, pos);
  const icount = head.readUInt16LE(2);
  const mode = head.readUInt16LE(4);
  const kind = KIND_BY_IFMT[mode & S_IFMT];
  if (kind === undefined) throw new CorruptImageError(`inode ${nid} has an invalid file type in mode 0${mode.toString(8)}`, pos + 4);
  let nlink: number;
  let size: number;
  let uid: number;
  let gid: number;
  let mtime: number;
  let mtimeNsec: number;
  if (extended) {
    size = Number(head.readBigUInt64LE(8));
    uid = head.readUInt32LE(24);
    gid = head.readUInt32LE(28);
    mtime = Number(head.readBigInt64LE(32));
    mtimeNsec = head.readUInt32LE(40);
    nlink = head.readUInt32LE(44);
  } else {
    nlink = head.readUInt16LE(6);
    size = head.readUInt32LE(8);
    // Compact inodes keep their mtime relative to the build time (0 in images of older tools).
    mtime = sb.buildTime + head.readUInt32LE(12);
    mtimeNsec = sb.buildTimeNsec;
    uid = head.readUInt16LE(24);
    gid = head.readUInt16LE(26);
  }
  if (!Number.isSafeInteger(size)) throw new CorruptImageError(`inode ${nid} has an impossible size`, pos + 8);
  const xattrSize = xattrBodySize(icount);
  return {
    nid,
    pos,
    kind,
    extended,
    layout,
    mode,
    nlink,
    size,
    uid,
    gid,
    mtime,
    mtimeNsec,
    u: head.readUInt32LE(16),
    xattrSize,
    dataPos: pos + (extended ? EXTENDED_SIZE : COMPACT_SIZE) + xattrSize,
  };
}

/** Whether the inode's data is compressed (either index format). */
export function isCompressed(inode: ErofsInode): boolean {
  return inode.layout === DataLayout.COMPRESSED_FULL || inode.layout === DataLayout.COMPRESSED_COMPACT;
}
