import type { ByteSource } from './byte-source.js';
import { crc32c } from './crc32c.js';
import { CorruptImageError, UnsupportedImageError } from './errors.js';

/** The superblock sits 1024 bytes into the image (room for a boot sector). */
export const SUPERBLOCK_OFFSET = 1024;
/** Size of the fixed part of the superblock; sb_extslots adds 16 bytes each. */
export const SUPERBLOCK_SIZE = 128;
export const EROFS_MAGIC = 0xe0f5e1e2;

/** feature_compat bits: nothing in them changes how the image must be read. */
export const FeatureCompat = {
  SB_CHKSUM: 0x1,
  MTIME: 0x2,
  XATTR_FILTER: 0x4,
} as const;

/** feature_incompat bits: a reader that does not know one must refuse the image. */
export const FeatureIncompat = {
  ZERO_PADDING: 0x1,
  /** Also BIG_PCLUSTER (same bit): per-algorithm configs after the superblock, multi-block pclusters. */
  COMPR_CFGS: 0x2,
  CHUNKED_FILE: 0x4,
  DEVICE_TABLE: 0x8,
  /** Also COMPR_HEAD2 (same bit). */
  ZTAILPACKING: 0x10,
  /** Also DEDUPE (same bit). */
  FRAGMENTS: 0x20,
  XATTR_PREFIXES: 0x40,
  BIT48: 0x80,
  METABOX: 0x100,
} as const;

/** The incompat features this reader implements. */
export const SUPPORTED_INCOMPAT =
  FeatureIncompat.ZERO_PADDING |
  FeatureIncompat.COMPR_CFGS |
  FeatureIncompat.CHUNKED_FILE |
  FeatureIncompat.DEVICE_TABLE |
  FeatureIncompat.ZTAILPACKING |
  FeatureIncompat.FRAGMENTS |
  FeatureIncompat.XATTR_PREFIXES;

const INCOMPAT_NAMES: Record<number, string> = {
  0x1: '0padding',
  0x2: 'compr_cfgs/big_pcluster',
  0x4: 'chunked_file',
  0x8: 'device_table',
  0x10: 'ztailpacking',
  0x20: 'fragments/dedupe',
  0x40: 'xattr_prefixes',
  0x80: '48bit',
  0x100: 'metabox',
};

/** Compression algorithm numbers (h_algorithmtype, available_compr_algs bits). */
export const COMPRESSION_ALGORITHMS = ['lz4', 'lzma', 'deflate', 'zstd'] as const;
export type CompressionAlgorithm = (typeof COMPRESSION_ALGORITHMS)[number];

export interface Superblock {
  checksum: number;
  featureCompat: number;
  blockSizeBits: number;
  blockSize: number;
  extSlots: number;
  rootNid: number;
  inodeCount: number;
  buildTime: number;
  buildTimeNsec: number;
  /** Image size in blocks. */
  blocks: number;
  metaBlockAddr: number;
  xattrBlockAddr: number;
  uuid: Buffer;
  volumeName: Buffer;
  featureIncompat: number;
  /** Bitmap of algorithms in use (lz4 only unless COMPR_CFGS). */
  availableComprAlgs: number;
  extraDevices: number;
  /** Long xattr name prefixes (xattr_prefixes): how many, and where (4-byte units; see Erofs). */
  xattrPrefixCount: number;
  xattrPrefixStart: number;
  /** The inode holding fragments (file tails packed together), with the fragments feature. */
  packedNid: number | undefined;
  /** Feature names for `info`. */
  features: string[];
}

/** Names of the feature bits set in an image (for `atomfs erofs info`). */
function featureNames(compat: number, incompat: number): string[] {
  const out: string[] = [];
  if (compat & FeatureCompat.SB_CHKSUM) out.push('sb_csum');
  if (compat & FeatureCompat.MTIME) out.push('mtime');
  if (compat & FeatureCompat.XATTR_FILTER) out.push('xattr_filter');
  for (let bit = 1; bit !== 0 && bit <= incompat; bit <<= 1) if (incompat & bit) out.push(INCOMPAT_NAMES[bit] ?? `incompat 0x${bit.toString(16)}`);
  return out;
}

/** Read and check the superblock: magic, block size, checksum, and refuse unknown incompat features. */
export function parseSuperblock(source: ByteSource): Superblock {
  if (source.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) {
    throw new CorruptImageError(`${source.size} bytes is too small for an erofs image`, undefined);
  }
  const b = source.read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE);
  const magic = b.readUInt32LE(0);
  if (magic !== EROFS_MAGIC) {
    throw new CorruptImageError(`no erofs magic (found 0x${magic.toString(16).padStart(8, '0')}, want 0x${EROFS_MAGIC.toString(16)})`, SUPERBLOCK_OFFSET);
  }
  const blockSizeBits = b[12]!;
  // The kernel takes 512-byte blocks up to its page size; larger ones are refused here too.
  if (blockSizeBits < 9 || blockSizeBits > 16) throw new CorruptImageError(`block size 2^${blockSizeBits} is out of range`, SUPERBLOCK_OFFSET + 12);
  const blockSize = 2 ** blockSizeBits;
  const featureCompat = b.readUInt32LE(8);
  const featureIncompat = b.readUInt32LE(80);
  const unknown = featureIncompat & ~SUPPORTED_INCOMPAT;
  if (unknown !== 0) {
    const names = featureNames(0, unknown);
    throw new UnsupportedImageError(`erofs image uses incompatible feature${names.length > 1 ? 's' : ''} ${names.join(', ')} (0x${unknown.toString(16)}), which this reader does not implement`);
  }
  const checksum = b.readUInt32LE(4);
  if (featureCompat & FeatureCompat.SB_CHKSUM) {
    // Over the rest of the superblock's block with the checksum field zeroed (as the kernel checks it).
    const len = Math.max(blockSize, SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) - SUPERBLOCK_OFFSET;
    if (SUPERBLOCK_OFFSET + len > source.size) throw new CorruptImageError('image ends inside its superblock block', SUPERBLOCK_OFFSET);
    const block = Buffer.from(source.read(SUPERBLOCK_OFFSET, len));
    block.writeUInt32LE(0, 4);
    const crc = crc32c(0xffffffff, block);
    if (crc !== checksum) {
      throw new CorruptImageError(`superblock checksum 0x${checksum.toString(16)} does not match its contents (0x${crc.toString(16)})`, SUPERBLOCK_OFFSET + 4);
    }
  }
  const extraDevices = featureIncompat & FeatureIncompat.DEVICE_TABLE ? b.readUInt16LE(86) : 0;
  if (extraDevices !== 0) {
    throw new UnsupportedImageError(`erofs image has ${extraDevices} extra device(s) (blobs); a layer must be one self-contained image`);
  }
  const blocks = b.readUInt32LE(36);
  return {
    checksum,
    featureCompat,
    blockSizeBits,
    blockSize,
    extSlots: b[13]!,
    rootNid: b.readUInt16LE(14),
    inodeCount: Number(b.readBigUInt64LE(16)),
    buildTime: Number(b.readBigUInt64LE(24)),
    buildTimeNsec: b.readUInt32LE(32),
    blocks,
    metaBlockAddr: b.readUInt32LE(40),
    xattrBlockAddr: b.readUInt32LE(44),
    uuid: Buffer.from(b.subarray(48, 64)),
    volumeName: Buffer.from(b.subarray(64, 80)),
    featureIncompat,
    availableComprAlgs: featureIncompat & FeatureIncompat.COMPR_CFGS ? b.readUInt16LE(84) : 1,
    extraDevices,
    xattrPrefixCount: featureIncompat & FeatureIncompat.XATTR_PREFIXES ? b[91]! : 0,
    xattrPrefixStart: featureIncompat & FeatureIncompat.XATTR_PREFIXES ? b.readUInt32LE(92) : 0,
    packedNid: featureIncompat & FeatureIncompat.FRAGMENTS && b.readBigUInt64LE(96) !== 0n ? Number(b.readBigUInt64LE(96)) : undefined,
    features: featureNames(featureCompat, featureIncompat),
  };
}
