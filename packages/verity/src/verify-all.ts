import { availableParallelism } from 'node:os';
import { BlockHasher, SaltedBlocks, type HashSpec } from './block-hasher.js';
import { FileSource } from '@atomfs/io';
import { FileByteSource, type ByteSource } from './byte-source.js';
import { RootHashMismatchError, VerityError } from './errors.js';
import type { TreeGeometry } from './geometry.js';
import { PARALLEL_MIN_BYTES, canParallelize, level0Parallel, level0Sync, type Level0Chunk } from './level0.js';
import { parseRootHash } from './root-hash.js';
import type { VeritySuperblock } from './superblock.js';
import { compareHashBlock, computeHashBlocks, hashBlocksPerBatch } from './tree-level.js';
import { readSuperblock } from './verified-source.js';

export interface VerifyAllOptions {
  /** Byte offset of the verity superblock. */
  hashOffset: number;
  /** Trusted root hash (hex or bytes). */
  rootHash: string | Buffer;
  /** Names the layer in errors (default: the source's label or "layer"). */
  label?: string;
  /** Called after each chunk with bytes hashed so far and the total to hash. */
  onProgress?: (done: number, total: number) => void;
  /** Collect mismatches (up to maxErrors) instead of throwing the first one. */
  collect?: boolean;
  /** Cap on collected errors (default 100). */
  maxErrors?: number;
  /** verifyAll only: threads hashing the data level, the calling one included (default: min(cores, 4); 1 = calling thread only). */
  threads?: number;
  /** verifyAll only: smallest data area worth starting workers for (default 32 MiB). */
  parallelMinBytes?: number;
}

export interface VerifyAllResult {
  readonly ok: boolean;
  /** Mismatches found (only with `collect`; otherwise the first one is thrown). */
  readonly errors: VerityError[];
  readonly superblock: VeritySuperblock;
  readonly geometry: TreeGeometry;
  /** Root hash computed from the stored top block (hex). */
  readonly computedRootHash: string;
  /** Bytes hashed (data area plus every hash level but the top). */
  readonly bytesHashed: number;
}

/** Thrown inside to unwind once maxErrors are collected. */
class EnoughErrors extends Error {}


/**
 * State of one full verification: the same order of checks as `veritysetup verify` (level 0
 * against the data, then each level against the stored level below, then the root), each stored
 * hash block compared whole (digests and zero padding).
 */
class FullCheck {
  readonly errors: VerityError[] = [];
  readonly spec: HashSpec;
  readonly root: Buffer;
  readonly total: number;
  done = 0;

  constructor(
    readonly source: ByteSource,
    readonly g: TreeGeometry,
    readonly superblock: VeritySuperblock,
    readonly label: string,
    readonly options: VerifyAllOptions,
  ) {
    this.spec = { algorithm: g.algorithm, hashType: g.hashType, salt: superblock.salt };
    this.root = parseRootHash(options.rootHash, g.digestSize, label);
    let total = g.dataBytes;
    for (let i = 1; i < g.levels; i++) total += g.levelSize[i - 1]! * g.hashBlockSize;
    this.total = total;
  }

  report(err: VerityError): void {
    if (!this.options.collect) throw err;
    this.errors.push(err);
    const max = this.options.maxErrors;
    if (this.errors.length >= (max !== undefined && Number.isSafeInteger(max) && max > 0 ? max : 100)) throw new EnoughErrors();
  }

  progress(bytes: number): void {
    this.done += bytes;
    this.options.onProgress?.(this.done, this.total);
  }

  /** Compares computed blocks [first, first+count) of `level` with the stored ones. */
  compare(level: number, first: number, count: number, expected: Buffer): void {
    const hbs = this.g.hashBlockSize;
    const stored = this.source.read((this.g.levelStart[level]! + first) * hbs, count * hbs);
    for (let k = 0; k < count; k++) {
      for (const err of compareHashBlock(this.g, this.label, level, first + k, expected, k * hbs, stored, k * hbs)) this.report(err);
    }
  }

  level0Chunk(chunk: Level0Chunk): void {
    this.compare(0, chunk.first, chunk.count, chunk.blocks);
    this.progress(Math.min(chunk.count * this.g.hashesPerBlock, this.g.dataBlocks - chunk.first * this.g.hashesPerBlock) * this.g.dataBlockSize);
  }

  /** Levels 1.. from the stored level below (a small fraction of the work: done on this thread). */
  upperLevels(): void {
    const g = this.g;
    const hbs = g.hashBlockSize;
    const perBatch = hashBlocksPerBatch(g, hbs);
    const batch = new SaltedBlocks(this.spec, hbs, perBatch * g.hashesPerBlock);
    for (let level = 1; level < g.levels; level++) {
      const below = g.levelStart[level - 1]!;
      const fill = (b: SaltedBlocks, firstChild: number, count: number): void => b.fillFromSource(this.source, (below + firstChild) * hbs, count);
      for (let first = 0; first < g.levelSize[level]!; first += perBatch) {
        const count = Math.min(perBatch, g.levelSize[level]! - first);
        this.compare(level, first, count, computeHashBlocks(g, level, first, count, batch, fill));
        this.progress(Math.min(count * g.hashesPerBlock, g.levelSize[level - 1]! - first * g.hashesPerBlock) * hbs);
      }
    }
  }

  /** Root: digest of the stored top block, or of data block 0 when there is no tree. */
  finish(): VerifyAllResult {
    const g = this.g;
    const offset = g.levels === 0 ? 0 : g.levelStart[g.levels - 1]! * g.hashBlockSize;
    const blockSize = g.levels === 0 ? g.dataBlockSize : g.hashBlockSize;
    const computed = new BlockHasher(this.spec, blockSize).digest(this.source.read(offset, blockSize));
    if (g.levels === 0) this.progress(g.dataBlockSize);
    if (!computed.equals(this.root)) {
      this.report(new RootHashMismatchError(this.label, this.root.toString('hex'), computed.toString('hex'), offset));
    }
    return this.result(computed.toString('hex'));
  }

  result(computedRootHash: string): VerifyAllResult {
    return {
      ok: this.errors.length === 0,
      errors: this.errors,
      superblock: this.superblock,
      geometry: this.g,
      computedRootHash,
      bytesHashed: this.done,
    };
  }
}

function start(source: ByteSource, options: VerifyAllOptions): FullCheck {
  const label = options.label ?? (source instanceof FileSource ? source.label : 'layer');
  const { superblock, geometry } = readSuperblock(source, options.hashOffset, label);
  return new FullCheck(source, geometry, superblock, label, options);
}

/**
 * Full verification on the calling thread (what `veritysetup verify` does): every data block and
 * every hash block is hashed, every stored digest and padding byte compared, then the root.
 * Throws the first mismatch as a typed error, or with `collect` returns them all (up to maxErrors).
 */
export function verifyAllSync(source: ByteSource | string, options: VerifyAllOptions): VerifyAllResult {
  if (typeof source === 'string') {
    const file = new FileByteSource(source);
    try {
      return verifyAllSync(file, options);
    } finally {
      file.close();
    }
  }
  const check = start(source, options);
  try {
    for (const chunk of level0Sync(source, check.g, check.spec, check.label)) check.level0Chunk(chunk);
    check.upperLevels();
    return check.finish();
  } catch (err) {
    if (err instanceof EnoughErrors) return check.result('');
    throw err;
  }
}

/**
 * Full verification with the data level spread over worker threads when the source is a file
 * large enough to be worth it; otherwise the same as verifyAllSync. Workers read the file
 * themselves, so pass a path or a FileByteSource (any other ByteSource is hashed on this thread).
 */
export async function verifyAll(source: ByteSource | string, options: VerifyAllOptions): Promise<VerifyAllResult> {
  if (typeof source === 'string') {
    const file = new FileByteSource(source);
    try {
      return await verifyAll(file, options);
    } finally {
      file.close();
    }
  }
  const threads = options.threads ?? Math.min(availableParallelism(), 4);
  const check = start(source, options);
  const parallel = threads > 1 && check.g.dataBytes >= (options.parallelMinBytes ?? PARALLEL_MIN_BYTES) && canParallelize(source) && check.g.levels > 0;
  try {
    if (parallel) {
      for await (const chunk of level0Parallel(source as FileSource, check.g, check.spec, check.label, threads - 1)) check.level0Chunk(chunk);
    } else {
      for (const chunk of level0Sync(source, check.g, check.spec, check.label)) check.level0Chunk(chunk);
    }
    check.upperLevels();
    return check.finish();
  } catch (err) {
    if (err instanceof EnoughErrors) return check.result('');
    throw err;
  }
}
