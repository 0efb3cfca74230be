import type { NodeKind } from '@atomfs/tree';
import { CorruptImageError } from './errors.js';
import { WIDE } from './wide.js';
import type { MetadataPosition, MetadataReader } from './metadata.js';

/** inode_type values: 1..7 basic, 8..14 extended. */
export enum InodeType {
  Dir = 1,
  File = 2,
  Symlink = 3,
  BlockDev = 4,
  CharDev = 5,
  Fifo = 6,
  Socket = 7,
  LDir = 8,
  LFile = 9,
  LSymlink = 10,
  LBlockDev = 11,
  LCharDev = 12,
  LFifo = 13,
  LSocket = 14,
}

/** st_mode file-type bits for the basic types 1..7. */
const TYPE_BITS = [0, 0o040000, 0o100000, 0o120000, 0o060000, 0o020000, 0o010000, 0o140000] as const;
export const NO_XATTR = 0xffffffff;
export const NO_FRAGMENT = 0xffffffff;
/**
 * The 16-byte header and the type-specific part of the inode being decoded. Two, because the
 * header is read before the part; both are decoded into numbers before readInode returns.
 */
/** Longest symlink target mksquashfs writes (SQUASHFS_SYMLINK_MAX). */
const SYMLINK_MAX = 65535;

export type InodeKind = NodeKind;
const KINDS: readonly InodeKind[] = ['dir', 'dir', 'file', 'symlink', 'block', 'char', 'fifo', 'socket'];

/** The kind of a basic inode type 1..7 (directory entries list extended inodes by their basic type). */
export function kindOfType(basic: number): InodeKind {
  return KINDS[basic]!;
}

/** The 16-byte header shared by every inode, plus fields every type has after decoding. */
interface InodeCommon {
  /** Inode reference this inode was read from (block << 16 | offset, inode-table relative). */
  ref: number;
  type: InodeType;
  /** st_mode: type bits from the inode type plus the stored permission bits. */
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  inodeNumber: number;
  nlink: number;
  /** Index into the xattr id table, or NO_XATTR. */
  xattrIndex: number;
}

export interface DirInode extends InodeCommon {
  kind: 'dir';
  /** Directory-table-relative position of the metadata block holding the listing. */
  startBlock: number;
  offset: number;
  /** Listing bytes + 3 (the kernel's "." and ".." positions). */
  fileSize: number;
  parentInode: number;
  /** Directory index entries (extended directories only). */
  indexCount: number;
  /** Where the directory index starts (right after the extended inode). */
  indexPos: MetadataPosition | undefined;
}

export interface FileInode extends InodeCommon {
  kind: 'file';
  /** Absolute position of the first data block. */
  startBlock: number;
  fileSize: number;
  sparse: number;
  fragment: number;
  fragmentOffset: number;
  /** Number of full/partial data blocks listed after the inode (the tail may be in a fragment). */
  blockCount: number;
  /** Where the u32 block size list starts. */
  blockListPos: MetadataPosition;
}

export interface SymlinkInode extends InodeCommon {
  kind: 'symlink';
  target: Buffer;
}

export interface DeviceInode extends InodeCommon {
  kind: 'block' | 'char';
  /** Linux new_encode_dev encoding, as fuse_attr.rdev wants it. */
  rdev: number;
}

export interface IpcInode extends InodeCommon {
  kind: 'fifo' | 'socket';
}

export type Inode = DirInode | FileInode | SymlinkInode | DeviceInode | IpcInode;

export interface InodeContext {
  blockSize: number;
  blockLog: number;
  idOf(index: number, referencedFrom: number): number;
}

/**
 * Every inode is one of these, whatever its kind: the same fields in the same order, each of one
 * type, filled once. The code that reads inodes (the FUSE server's every request) then sees one
 * hidden class instead of one per kind and never a field changing its kind — spreads and later
 * stores made V8 discard and recompile that code again and again in a fresh server.
 * Fields of other kinds hold neutral values (0, undefined, an empty target).
 */
class InodeRecord {
  /** Set in the constructor, after WIDE (see there). */
  ref = WIDE;
  kind: InodeKind;
  nlink = 1;
  xattrIndex = NO_XATTR;
  startBlock = 0;
  fileSize = 0;
  offset = 0;
  parentInode = 0;
  indexCount = 0;
  indexPos: MetadataPosition | undefined = undefined;
  sparse = 0;
  fragment = NO_FRAGMENT;
  fragmentOffset = 0;
  blockCount = 0;
  blockListPos: MetadataPosition | undefined = undefined;
  target: Buffer = EMPTY;
  rdev = 0;

  constructor(
    ref: number,
    readonly type: InodeType,
    readonly mode: number,
    readonly uid: number,
    readonly gid: number,
    readonly mtime: number,
    readonly inodeNumber: number,
  ) {
    this.ref = ref;
    this.kind = KINDS[type > 7 ? type - 7 : type]!;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * Decode the inode at `pos` (which must already be absolute: block = inode_table_start + relative).
 * `ref` is the relative reference, kept so callers can identify the inode and find it again.
 */
export function readInode(meta: MetadataReader, pos: MetadataPosition, ref: number, ctx: InodeContext): Inode {
  const at = pos.block;
  const h = meta.header.read(meta, pos, 16);
  const type = h.readUInt16LE(0) as InodeType;
  if (type < 1 || type > 14) throw new CorruptImageError(`inode type ${type} is invalid`, at);
  const basic = type > 7 ? type - 7 : type;
  const r = new InodeRecord(ref, type, TYPE_BITS[basic]! | (h.readUInt16LE(2) & 0o7777), ctx.idOf(h.readUInt16LE(4), at), ctx.idOf(h.readUInt16LE(6), at), h.readUInt32LE(8), h.readUInt32LE(12));
  switch (type) {
    case InodeType.Dir: {
      const b = meta.body.read(meta, pos, 16);
      r.startBlock = b.readUInt32LE(0);
      r.nlink = b.readUInt32LE(4);
      r.fileSize = b.readUInt16LE(8);
      r.offset = b.readUInt16LE(10);
      r.parentInode = b.readUInt32LE(12);
      return r as DirInode;
    }
    case InodeType.LDir: {
      const b = meta.body.read(meta, pos, 24);
      r.nlink = b.readUInt32LE(0);
      r.fileSize = b.readUInt32LE(4);
      r.startBlock = b.readUInt32LE(8);
      r.parentInode = b.readUInt32LE(12);
      r.indexCount = b.readUInt16LE(16);
      r.offset = b.readUInt16LE(18);
      r.xattrIndex = b.readUInt32LE(20);
      r.indexPos = { block: pos.block, offset: pos.offset };
      return checkDir(r as DirInode, at);
    }
    case InodeType.File: {
      const b = meta.body.read(meta, pos, 16);
      return fileInode(r, b.readUInt32LE(0), b.readUInt32LE(12), 0, b.readUInt32LE(4), b.readUInt32LE(8), pos, ctx, at);
    }
    case InodeType.LFile: {
      const b = meta.body.read(meta, pos, 40);
      r.nlink = b.readUInt32LE(24);
      r.xattrIndex = b.readUInt32LE(36);
      return fileInode(r, safeU64(b, 0, at, 'start_block'), safeU64(b, 8, at, 'file_size'), safeU64(b, 16, at, 'sparse'), b.readUInt32LE(28), b.readUInt32LE(32), pos, ctx, at);
    }
    case InodeType.Symlink:
    case InodeType.LSymlink: {
      const b = meta.body.read(meta, pos, 8);
      // Both fields now: the body scratch is read again below.
      r.nlink = b.readUInt32LE(0);
      const size = b.readUInt32LE(4);
      if (size > SYMLINK_MAX) throw new CorruptImageError(`symlink target length ${size} is over ${SYMLINK_MAX}`, at);
      r.target = meta.read(pos, size);
      if (type === InodeType.LSymlink) r.xattrIndex = meta.body.read(meta, pos, 4).readUInt32LE(0);
      return r as SymlinkInode;
    }
    case InodeType.BlockDev:
    case InodeType.CharDev:
    case InodeType.LBlockDev:
    case InodeType.LCharDev: {
      const ext = type > 7;
      const b = meta.body.read(meta, pos, ext ? 12 : 8);
      r.nlink = b.readUInt32LE(0);
      r.rdev = b.readUInt32LE(4);
      if (ext) r.xattrIndex = b.readUInt32LE(8);
      return r as DeviceInode;
    }
    default: {
      const ext = type > 7;
      const b = meta.body.read(meta, pos, ext ? 8 : 4);
      r.nlink = b.readUInt32LE(0);
      if (ext) r.xattrIndex = b.readUInt32LE(4);
      return r as IpcInode;
    }
  }
}

function checkDir(inode: DirInode, at: number): DirInode {
  if (inode.offset >= 8192) throw new CorruptImageError(`directory listing offset ${inode.offset} is past a metadata block`, at);
  return inode;
}

function safeU64(b: Buffer, off: number, at: number, name: string): number {
  const v = b.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptImageError(`inode ${name} ${v} is out of range`, at);
  return Number(v);
}

function fileInode(
  r: InodeRecord,
  startBlock: number,
  fileSize: number,
  sparse: number,
  fragment: number,
  fragmentOffset: number,
  pos: MetadataPosition,
  ctx: InodeContext,
  at: number,
): FileInode {
  if (fragment !== NO_FRAGMENT && fileSize % ctx.blockSize === 0) {
    throw new CorruptImageError('file has a fragment but no tail bytes to keep in it', at);
  }
  if (fragment !== NO_FRAGMENT && fragmentOffset >= ctx.blockSize) {
    throw new CorruptImageError(`fragment offset ${fragmentOffset} is past the block size`, at);
  }
  r.startBlock = startBlock;
  r.fileSize = fileSize;
  r.sparse = sparse;
  r.fragment = fragment;
  r.fragmentOffset = fragmentOffset;
  // With a tail fragment the last partial block is not in the block list.
  r.blockCount = fragment === NO_FRAGMENT ? Math.ceil(fileSize / ctx.blockSize) : Math.floor(fileSize / ctx.blockSize);
  r.blockListPos = { block: pos.block, offset: pos.offset };
  return r as FileInode;
}

