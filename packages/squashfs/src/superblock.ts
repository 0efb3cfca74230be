import { CorruptImageError, TruncatedImageError, UnsupportedImageError } from './errors.js';

/** The 96-byte squashfs 4.0 superblock at offset 0. */
export interface Superblock {
  magic: number;
  inodeCount: number;
  mkfsTime: number;
  blockSize: number;
  fragmentCount: number;
  compression: number;
  blockLog: number;
  flags: number;
  idCount: number;
  versionMajor: number;
  versionMinor: number;
  /** Inode reference of the root directory: (block << 16) | offset. */
  rootInode: number;
  bytesUsed: number;
  idTableStart: number;
  /** Absent (no xattrs) when undefined. */
  xattrIdTableStart: number | undefined;
  inodeTableStart: number;
  directoryTableStart: number;
  fragmentTableStart: number | undefined;
  /** Export (NFS lookup) table; absent when undefined. */
  exportTableStart: number | undefined;
}

export const SUPERBLOCK_SIZE = 96;
export const SQUASHFS_MAGIC = 0x73717368;
/** The magic of a byte-swapped (big-endian, squashfs <= 3.x) image. */
const SWAPPED_MAGIC = 0x68737173;
const ABSENT = 0xffffffffffffffffn;

export enum SuperblockFlag {
  NoInodeCompression = 0x0001,
  NoDataCompression = 0x0002,
  Check = 0x0004,
  NoFragmentCompression = 0x0008,
  NoFragments = 0x0010,
  AlwaysFragments = 0x0020,
  Duplicates = 0x0040,
  Exportable = 0x0080,
  NoXattrCompression = 0x0100,
  NoXattrs = 0x0200,
  CompressorOptions = 0x0400,
  NoIdCompression = 0x0800,
}

/** A u64 field as a safe JS number; values past 2^53 cannot be valid offsets in any real image. */
function u64(buf: Buffer, off: number, name: string): number {
  const v = buf.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptImageError(`superblock ${name} ${v} is out of range`, off);
  return Number(v);
}

function optionalU64(buf: Buffer, off: number, name: string): number | undefined {
  return buf.readBigUInt64LE(off) === ABSENT ? undefined : u64(buf, off, name);
}

/**
 * Decode and validate the superblock. `imageSize` is the number of readable bytes: every table must
 * start inside [96, bytes_used] and bytes_used must fit in the image, so later reads can trust the
 * table bounds (the same sanity chain the kernel applies in fs/squashfs/super.c).
 */
export function parseSuperblock(buf: Buffer, imageSize: number): Superblock {
  if (buf.length < SUPERBLOCK_SIZE) throw new TruncatedImageError(0, SUPERBLOCK_SIZE, buf.length);
  const magic = buf.readUInt32LE(0);
  if (magic === SWAPPED_MAGIC) throw new UnsupportedImageError('big-endian squashfs (version 3.x or older) is not supported');
  if (magic !== SQUASHFS_MAGIC) {
    throw new CorruptImageError(`bad magic 0x${magic.toString(16).padStart(8, '0')} (not a squashfs image)`, 0);
  }
  const sb: Superblock = {
    magic,
    inodeCount: buf.readUInt32LE(4),
    mkfsTime: buf.readUInt32LE(8),
    blockSize: buf.readUInt32LE(12),
    fragmentCount: buf.readUInt32LE(16),
    compression: buf.readUInt16LE(20),
    blockLog: buf.readUInt16LE(22),
    flags: buf.readUInt16LE(24),
    idCount: buf.readUInt16LE(26),
    versionMajor: buf.readUInt16LE(28),
    versionMinor: buf.readUInt16LE(30),
    rootInode: u64(buf, 32, 'root_inode'),
    bytesUsed: u64(buf, 40, 'bytes_used'),
    idTableStart: u64(buf, 48, 'id_table_start'),
    xattrIdTableStart: optionalU64(buf, 56, 'xattr_id_table_start'),
    inodeTableStart: u64(buf, 64, 'inode_table_start'),
    directoryTableStart: u64(buf, 72, 'directory_table_start'),
    fragmentTableStart: optionalU64(buf, 80, 'fragment_table_start'),
    exportTableStart: optionalU64(buf, 88, 'lookup_table_start'),
  };
  if (sb.versionMajor !== 4 || sb.versionMinor !== 0) {
    throw new UnsupportedImageError(`squashfs version ${sb.versionMajor}.${sb.versionMinor} is not supported (only 4.0)`);
  }
  const { blockSize, blockLog } = sb;
  if (blockSize < 4096 || blockSize > 1048576 || (blockSize & (blockSize - 1)) !== 0) {
    throw new CorruptImageError(`block_size ${blockSize} is not a power of two between 4096 and 1048576`, 12);
  }
  if (1 << blockLog !== blockSize || blockLog > 20) {
    throw new CorruptImageError(`block_log ${blockLog} does not match block_size ${blockSize}`, 22);
  }
  if (sb.bytesUsed > imageSize) {
    throw new CorruptImageError(`bytes_used ${sb.bytesUsed} is larger than the image (${imageSize} bytes): truncated image`, 40);
  }
  if (sb.bytesUsed < SUPERBLOCK_SIZE) throw new CorruptImageError(`bytes_used ${sb.bytesUsed} is too small`, 40);
  if (sb.idCount === 0) throw new CorruptImageError('id table is empty (no_ids = 0)', 26);
  if (sb.inodeCount === 0) throw new CorruptImageError('inode count is 0', 4);
  const tables: [string, number | undefined, number][] = [
    ['inode_table_start', sb.inodeTableStart, 64],
    ['directory_table_start', sb.directoryTableStart, 72],
    ['id_table_start', sb.idTableStart, 48],
    ['xattr_id_table_start', sb.xattrIdTableStart, 56],
    ['fragment_table_start', sb.fragmentCount > 0 ? sb.fragmentTableStart : undefined, 80],
    ['lookup_table_start', sb.exportTableStart, 88],
  ];
  for (const [name, start, off] of tables) {
    if (start !== undefined && (start < SUPERBLOCK_SIZE || start >= sb.bytesUsed)) {
      throw new CorruptImageError(`${name} ${start} is outside the image (bytes_used ${sb.bytesUsed})`, off);
    }
  }
  if (sb.fragmentCount > 0 && sb.fragmentTableStart === undefined) {
    throw new CorruptImageError(`${sb.fragmentCount} fragments but no fragment table`, 80);
  }
  if (sb.inodeTableStart >= sb.directoryTableStart) {
    throw new CorruptImageError('inode table does not start before the directory table', 64);
  }
  if (sb.rootInode % 65536 >= 8192) throw new CorruptImageError('root inode offset is past a metadata block', 32);
  return sb;
}
