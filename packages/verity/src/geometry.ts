import { digestSizeOf } from './algorithm.js';
import { VerityArgumentError } from './errors.js';

/** cryptsetup VERITY_MAX_LEVELS and the kernel's DM_VERITY_MAX_LEVELS. */
export const MAX_LEVELS = 63;
/** Size of the on-disk verity superblock (struct verity_sb). */
export const SUPERBLOCK_SIZE = 512;

/** The parameters that shape a hash tree (all but salt and uuid, which do not change the layout). */
export interface TreeParams {
  /** 1 = normal (salt first, digest slots padded to a power of two); 0 = Chrome OS (salt last, packed). */
  readonly hashType: 0 | 1;
  readonly algorithm: string;
  readonly dataBlockSize: number;
  readonly hashBlockSize: number;
  readonly dataBlocks: number;
}

/**
 * Where every hash block lives. Block numbers are in hash-block units from the start of the file
 * (the hash device is the layer file itself). Level 0 holds the digests of the data blocks, level
 * levels-1 is the single top block whose digest is the root hash; on disk the top level comes first.
 */
export interface TreeGeometry extends TreeParams {
  readonly digestSize: number;
  /** Bytes between consecutive digests in a hash block: next power of two for v1, digestSize for v0. */
  readonly slotSize: number;
  readonly hashesPerBlockBits: number;
  readonly hashesPerBlock: number;
  readonly levels: number;
  /** levelStart[i] = first hash block (file block number) of level i. */
  readonly levelStart: readonly number[];
  /** levelSize[i] = number of hash blocks of level i. */
  readonly levelSize: readonly number[];
  /** First hash block of the tree (the top block when levels > 0). */
  readonly hashStartBlock: number;
  /** One past the last hash block: the tree ends at hashEndBlock * hashBlockSize bytes. */
  readonly hashEndBlock: number;
  /** Bytes of the data area: dataBlocks * dataBlockSize. */
  readonly dataBytes: number;
}

/** 512 ≤ size ≤ 512 KiB and a power of two (cryptsetup VERITY_BLOCK_SIZE_OK). */
export function blockSizeOk(size: number): boolean {
  return Number.isInteger(size) && size >= 512 && size <= 512 * 1024 && (size & (size - 1)) === 0;
}

/** Smallest multiple of 4096 ≥ dataBytes: where stacker/atomfs put the verity superblock. */
export function hashOffsetFor(dataBytes: number): number {
  if (!Number.isSafeInteger(dataBytes) || dataBytes < 0) throw new RangeError(`bad data size ${dataBytes}`);
  return Math.ceil(dataBytes / 4096) * 4096;
}

/**
 * First hash block of the tree when the superblock sits at `hashOffset`: the tree starts at the
 * first hash block after the superblock (cryptsetup VERITY_hash_offset_block). Without a
 * superblock the tree starts at hashOffset itself.
 */
export function hashStartBlockFor(hashOffset: number, hashBlockSize: number, superblock = true): number {
  return superblock ? Math.ceil((hashOffset + SUPERBLOCK_SIZE) / hashBlockSize) : Math.floor(hashOffset / hashBlockSize);
}

/** floor(log2(u)) for u ≥ 1 (cryptsetup get_bits_down). */
function bitsDown(u: number): number {
  let i = 0;
  while (Math.floor(u / 2 ** i) > 1) i++;
  return i;
}

/** ceil(log2(u)) (cryptsetup get_bits_up). */
function bitsUp(u: number): number {
  let i = 0;
  while (2 ** i < u) i++;
  return i;
}

/**
 * Lays out the tree exactly like cryptsetup's hash_levels(). Arithmetic uses powers of two as
 * doubles (exact below 2^53), never 32-bit shifts: block counts exceed 2^32 on large devices.
 */
export function computeGeometry(params: TreeParams, hashStartBlock: number, label = 'tree'): TreeGeometry {
  const { hashType, algorithm, dataBlockSize, hashBlockSize, dataBlocks } = params;
  const fail = (why: string): never => {
    throw new VerityArgumentError(label, why);
  };
  if (hashType !== 0 && hashType !== 1) fail(`unsupported hash type ${String(hashType)}`);
  if (!blockSizeOk(dataBlockSize)) fail(`bad data block size ${dataBlockSize}`);
  if (!blockSizeOk(hashBlockSize)) fail(`bad hash block size ${hashBlockSize}`);
  const digestSize = digestSizeOf(algorithm) ?? fail(`unknown hash algorithm "${algorithm}"`);
  if (!Number.isSafeInteger(dataBlocks) || dataBlocks < 1) fail(`bad data block count ${dataBlocks}`);
  if (!Number.isSafeInteger(dataBlocks * dataBlockSize)) fail(`data area of ${dataBlocks} blocks is too large`);
  if (!Number.isSafeInteger(hashStartBlock) || hashStartBlock < 0) fail(`bad hash start block ${hashStartBlock}`);
  const hashesPerBlockBits = bitsDown(Math.floor(hashBlockSize / digestSize));
  if (hashesPerBlockBits === 0) fail(`digest of ${digestSize} bytes does not fit twice in a ${hashBlockSize}-byte hash block`);
  const hashesPerBlock = 2 ** hashesPerBlockBits;

  let levels = 0;
  while (hashesPerBlockBits * levels < 64 && Math.floor((dataBlocks - 1) / 2 ** (hashesPerBlockBits * levels)) !== 0) levels++;
  if (levels > MAX_LEVELS) fail(`${levels} tree levels exceed the maximum of ${MAX_LEVELS}`);

  const levelStart: number[] = new Array<number>(levels).fill(0);
  const levelSize: number[] = new Array<number>(levels).fill(0);
  let position = hashStartBlock;
  for (let i = levels - 1; i >= 0; i--) {
    levelStart[i] = position;
    levelSize[i] = Math.ceil(dataBlocks / 2 ** ((i + 1) * hashesPerBlockBits));
    position += levelSize[i]!;
  }
  if (!Number.isSafeInteger(position * hashBlockSize)) fail('hash area is too large');

  return {
    hashType,
    algorithm: algorithm.toLowerCase(),
    dataBlockSize,
    hashBlockSize,
    dataBlocks,
    digestSize,
    slotSize: hashType === 1 ? 2 ** bitsUp(digestSize) : digestSize,
    hashesPerBlockBits,
    hashesPerBlock,
    levels,
    levelStart,
    levelSize,
    hashStartBlock,
    hashEndBlock: position,
    dataBytes: dataBlocks * dataBlockSize,
  };
}

/** Number of blocks at the level below `level` (data blocks for level 0). */
export function childCount(g: TreeGeometry, level: number): number {
  return level === 0 ? g.dataBlocks : g.levelSize[level - 1]!;
}

/**
 * Where the digest of child `child` of a level-`level` hash block is stored: the file block number
 * of that hash block and the byte offset of the slot inside it. `child` indexes the level below
 * (a data block number for level 0).
 */
export function digestSlot(g: TreeGeometry, level: number, child: number): { block: number; offset: number } {
  const inLevel = Math.floor(child / g.hashesPerBlock);
  return { block: g.levelStart[level]! + inLevel, offset: (child - inLevel * g.hashesPerBlock) * g.slotSize };
}
