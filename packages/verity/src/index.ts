export { BufferByteSource, FileByteSource, checkReadRange, type ByteSource, type FileByteSourceOptions } from './byte-source.js';
export {
  HashWorkerError,
  RootHashMismatchError,
  VerityArgumentError,
  VerityError,
  VerityMismatchError,
  VeritySpareAreaError,
  VeritySuperblockError,
  VerityTruncatedError,
} from './errors.js';
export { digestSizeOf } from './algorithm.js';
export {
  MAX_LEVELS,
  SUPERBLOCK_SIZE,
  blockSizeOk,
  childCount,
  computeGeometry,
  digestSlot,
  hashOffsetFor,
  hashStartBlockFor,
  type TreeGeometry,
  type TreeParams,
} from './geometry.js';
export { MAX_SALT_SIZE, VERITY_SIGNATURE, encodeSuperblock, parseSuperblock, validateSuperblock, type VeritySuperblock } from './superblock.js';
export { formatUuid, parseUuid } from './uuid.js';
export { parseRootHash } from './root-hash.js';
export {
  VerifiedSource,
  openVerified,
  readSuperblock,
  type OpenVerifiedOptions,
  type VerifiedSourceOptions,
  type VerifiedSourceStats,
} from './verified-source.js';
export { verifyAll, verifyAllSync, type VerifyAllOptions, type VerifyAllResult } from './verify-all.js';
export { shutdownHashWorkers } from './hash-pool.js';
export { formatVerity, formatVeritySync, type FormatVerityOptions, type FormatVerityResult } from './format.js';
