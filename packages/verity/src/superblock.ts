import { digestSizeOf } from './algorithm.js';
import { VerityArgumentError, VeritySuperblockError, VerityTruncatedError } from './errors.js';
import { SUPERBLOCK_SIZE, blockSizeOk, computeGeometry, hashStartBlockFor, type TreeGeometry } from './geometry.js';

/**
 * struct verity_sb (cryptsetup lib/verity/verity.c), 512 bytes, little-endian:
 *   0 signature[8] "verity\0\0" | 8 version u32 | 12 hash_type u32 | 16 uuid[16] | 32 algorithm[32]
 *   64 data_block_size u32 | 68 hash_block_size u32 | 72 data_blocks u64 | 80 salt_size u16
 *   82 pad1[6] | 88 salt[256] | 344 pad2[168]
 * The kernel never reads it; libcryptsetup turns it into the dm table. The root hash is not in it.
 */
export interface VeritySuperblock {
  /** Always 1 (the only version cryptsetup reads or writes). */
  readonly version: number;
  readonly hashType: 0 | 1;
  /** 16 raw bytes. */
  readonly uuid: Buffer;
  /** Lower-case algorithm name, e.g. "sha256". */
  readonly algorithm: string;
  readonly dataBlockSize: number;
  readonly hashBlockSize: number;
  readonly dataBlocks: number;
  /** salt_size bytes. */
  readonly salt: Buffer;
}

export const VERITY_SIGNATURE = Buffer.from('verity\0\0', 'latin1');
export const MAX_SALT_SIZE = 256;
const ALGORITHM_FIELD = 32;

/**
 * Decodes and checks a superblock on its own (the checks of cryptsetup VERITY_read_sb: signature,
 * version, hash type, block sizes, known algorithm, salt size), plus that data_blocks is a usable
 * number. Consistency with the file is validateSuperblock's job.
 */
export function parseSuperblock(buf: Buffer, label: string, offset: number): VeritySuperblock {
  const fail = (why: string): never => {
    throw new VeritySuperblockError(label, offset, why);
  };
  if (buf.length < SUPERBLOCK_SIZE) fail(`only ${buf.length} of ${SUPERBLOCK_SIZE} bytes present`);
  if (!buf.subarray(0, 8).equals(VERITY_SIGNATURE)) fail(`no verity signature (found ${buf.subarray(0, 8).toString('hex')})`);
  const version = buf.readUInt32LE(8);
  if (version !== 1) fail(`unsupported superblock version ${version}`);
  const hashType = buf.readUInt32LE(12);
  if (hashType !== 0 && hashType !== 1) fail(`unsupported hash type ${hashType}`);
  const algoField = buf.subarray(32, 32 + ALGORITHM_FIELD);
  const nul = algoField.indexOf(0);
  const algorithm = algoField.subarray(0, nul < 0 ? ALGORITHM_FIELD : nul).toString('latin1').toLowerCase();
  if (digestSizeOf(algorithm) === null) fail(`unknown hash algorithm ${JSON.stringify(algorithm)}`);
  const dataBlockSize = buf.readUInt32LE(64);
  const hashBlockSize = buf.readUInt32LE(68);
  if (!blockSizeOk(dataBlockSize)) fail(`bad data block size ${dataBlockSize}`);
  if (!blockSizeOk(hashBlockSize)) fail(`bad hash block size ${hashBlockSize}`);
  const dataBlocksBig = buf.readBigUInt64LE(72);
  if (dataBlocksBig === 0n) fail('data_blocks is 0');
  if (dataBlocksBig * BigInt(dataBlockSize) > BigInt(Number.MAX_SAFE_INTEGER)) fail(`data_blocks ${dataBlocksBig} is too large`);
  const saltSize = buf.readUInt16LE(80);
  if (saltSize > MAX_SALT_SIZE) fail(`salt size ${saltSize} exceeds ${MAX_SALT_SIZE}`);
  return {
    version,
    hashType: hashType === 0 ? 0 : 1,
    uuid: Buffer.from(buf.subarray(16, 32)),
    algorithm,
    dataBlockSize,
    hashBlockSize,
    dataBlocks: Number(dataBlocksBig),
    salt: Buffer.from(buf.subarray(88, 88 + saltSize)),
  };
}

/** Encodes a superblock the way cryptsetup VERITY_write_sb does (all padding zero, name lower-cased). */
export function encodeSuperblock(sb: VeritySuperblock): Buffer {
  const algo = Buffer.from(sb.algorithm.toLowerCase(), 'latin1');
  if (algo.length >= ALGORITHM_FIELD) throw new RangeError(`algorithm name "${sb.algorithm}" is too long`);
  if (sb.uuid.length !== 16) throw new RangeError(`uuid must be 16 bytes, got ${sb.uuid.length}`);
  if (sb.salt.length > MAX_SALT_SIZE) throw new RangeError(`salt of ${sb.salt.length} bytes exceeds ${MAX_SALT_SIZE}`);
  const buf = Buffer.alloc(SUPERBLOCK_SIZE);
  VERITY_SIGNATURE.copy(buf, 0);
  buf.writeUInt32LE(sb.version, 8);
  buf.writeUInt32LE(sb.hashType, 12);
  sb.uuid.copy(buf, 16);
  algo.copy(buf, 32);
  buf.writeUInt32LE(sb.dataBlockSize, 64);
  buf.writeUInt32LE(sb.hashBlockSize, 68);
  buf.writeBigUInt64LE(BigInt(sb.dataBlocks), 72);
  buf.writeUInt16LE(sb.salt.length, 80);
  sb.salt.copy(buf, 88);
  return buf;
}

/**
 * Checks a parsed superblock against the file it sits in and returns the tree layout:
 * the superblock offset is a multiple of 512, the data area ends at or before the superblock
 * (data and hash area share the file), and the whole tree lies inside the file.
 */
export function validateSuperblock(sb: VeritySuperblock, hashOffset: number, fileSize: number, label: string): TreeGeometry {
  const fail = (why: string): never => {
    throw new VeritySuperblockError(label, hashOffset, why);
  };
  if (!Number.isSafeInteger(hashOffset) || hashOffset < 0 || hashOffset % SUPERBLOCK_SIZE !== 0) {
    fail(`superblock offset ${hashOffset} is not a multiple of ${SUPERBLOCK_SIZE}`);
  }
  const dataBytes = sb.dataBlocks * sb.dataBlockSize;
  if (dataBytes > hashOffset) fail(`data area of ${sb.dataBlocks} blocks (${dataBytes} bytes) overlaps the superblock`);
  let g: TreeGeometry;
  try {
    g = computeGeometry(sb, hashStartBlockFor(hashOffset, sb.hashBlockSize), label);
  } catch (err) {
    if (err instanceof VerityArgumentError) fail(err.detail);
    throw err;
  }
  const treeEnd = g.hashEndBlock * g.hashBlockSize;
  if (treeEnd > fileSize) throw new VerityTruncatedError(label, fileSize, treeEnd - fileSize, fileSize);
  return g;
}
