export { BufferSource, FileSource, type ByteSource } from './byte-source.js';
export { NULL_ADDR, type Mapping } from './block-map.js';
export type { DirEntry } from './directory.js';
export { Erofs, type ErofsOptions, type StatFs } from './erofs.js';
export { FsError } from '@atomfs/tree';
export { CorruptImageError, DecompressError, ErofsError, TruncatedImageError, UnsupportedImageError } from './errors.js';
export { DataLayout, isCompressed, type ErofsInode, type InodeKind } from './inode.js';
export {
  COMPRESSION_ALGORITHMS,
  EROFS_MAGIC,
  FeatureCompat,
  FeatureIncompat,
  parseSuperblock,
  SUPERBLOCK_OFFSET,
  SUPPORTED_INCOMPAT,
  type CompressionAlgorithm,
  type Superblock,
} from './superblock.js';
export type { Xattr } from './xattr.js';
export { MAX_EXTENT_BYTES, type ZExtent } from './zmap.js';
export { extract, type ExtractOptions, type ExtractResult, type ExtractSkip } from './extract.js';
export { erofsTree } from './tree.js';
