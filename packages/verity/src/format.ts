import { randomBytes, randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { BlockHasher, SaltedBlocks, type HashSpec } from './block-hasher.js';
import { FileByteSource } from './byte-source.js';
import { VerityArgumentError, VerityTruncatedError } from './errors.js';
import { SUPERBLOCK_SIZE, computeGeometry, hashStartBlockFor, type TreeGeometry } from './geometry.js';
import { PARALLEL_MIN_BYTES, level0Parallel, level0Sync, type Level0Chunk } from './level0.js';
import { MAX_SALT_SIZE, encodeSuperblock, type VeritySuperblock } from './superblock.js';
import { computeHashBlocks, hashBlocksPerBatch } from './tree-level.js';
import { formatUuid, parseHex, parseUuid } from './uuid.js';

export interface FormatVerityOptions {
  /** Where the superblock goes (a multiple of 512; atomfs: squashfs size rounded up to 4096). */
  hashOffset: number;
  /** Data blocks to protect (default: hashOffset / dataBlockSize, the atomfs layout). */
  dataBlocks?: number;
  /** Salt, bytes or hex (default: 32 random bytes, like veritysetup; empty = no salt). */
  salt?: Buffer | string;
  /** UUID stored in the superblock, 16 bytes or text (default: random). */
  uuid?: Buffer | string;
  /** 1 (default) or 0 (Chrome OS). */
  hashType?: 0 | 1;
  /** Default "sha256". */
  algorithm?: string;
  /** Default 4096. */
  dataBlockSize?: number;
  /** Default 4096. */
  hashBlockSize?: number;
  /** formatVerity only: threads hashing the data level, the calling one included (default min(cores, 4); 1 = calling thread only). */
  threads?: number;
  /** formatVerity only: smallest data area worth starting workers for (default 32 MiB). */
  parallelMinBytes?: number;
  /** Names the file in errors (default: the path). */
  label?: string;
}

export interface FormatVerityResult {
  /** Hex root hash, what `veritysetup format` prints as "Root hash:". */
  readonly rootHash: string;
  /** Hex salt ("Salt:"). */
  readonly salt: string;
  /** Text UUID ("UUID:"). */
  readonly uuid: string;
  readonly superblock: VeritySuperblock;
  readonly geometry: TreeGeometry;
}

interface Plan {
  fd: number;
  label: string;
  superblock: VeritySuperblock;
  g: TreeGeometry;
  spec: HashSpec;
  hashOffset: number;
  data: FileByteSource;
  threads: number;
}

function bytesOption(value: Buffer | string, label: string, what: string): Buffer {
  if (typeof value !== 'string') return Buffer.from(value);
  const b = parseHex(value);
  if (b === null) throw new VerityArgumentError(label, `${what} ${JSON.stringify(value)} is not hex`);
  return b;
}

function plan(filePath: string, options: FormatVerityOptions): Plan {
  const label = options.label ?? filePath;
  const fail = (why: string): never => {
    throw new VerityArgumentError(label, why);
  };
  const hashOffset = options.hashOffset;
  if (!Number.isSafeInteger(hashOffset) || hashOffset < 0 || hashOffset % SUPERBLOCK_SIZE !== 0) {
    fail(`hash offset ${hashOffset} is not a multiple of ${SUPERBLOCK_SIZE}`);
  }
  const dataBlockSize = options.dataBlockSize ?? 4096;
  const hashBlockSize = options.hashBlockSize ?? 4096;
  const dataBlocks = options.dataBlocks ?? Math.floor(hashOffset / dataBlockSize);
  const salt = options.salt === undefined ? randomBytes(32) : bytesOption(options.salt, label, 'salt');
  if (salt.length > MAX_SALT_SIZE) fail(`salt of ${salt.length} bytes exceeds ${MAX_SALT_SIZE}`);
  let uuid: Buffer;
  if (options.uuid === undefined) uuid = parseUuid(randomUUID())!;
  else if (typeof options.uuid === 'string') uuid = parseUuid(options.uuid) ?? fail(`uuid ${JSON.stringify(options.uuid)} is not a UUID`);
  else uuid = Buffer.from(options.uuid);
  if (uuid.length !== 16) fail(`uuid must be 16 bytes, got ${uuid.length}`);
  const g = computeGeometry(
    { hashType: options.hashType ?? 1, algorithm: options.algorithm ?? 'sha256', dataBlockSize, hashBlockSize, dataBlocks },
    hashStartBlockFor(hashOffset, hashBlockSize),
    label,
  );
  if (g.dataBytes > hashOffset) fail(`data area of ${dataBlocks} blocks (${g.dataBytes} bytes) overlaps the hash area at ${hashOffset}`);
  const superblock: VeritySuperblock = {
    version: 1,
    hashType: g.hashType,
    uuid,
    algorithm: g.algorithm,
    dataBlockSize,
    hashBlockSize,
    dataBlocks,
    salt,
  };
  const fd = openSync(filePath, 'r+');
  try {
    const size = fstatSync(fd).size;
    if (size < g.dataBytes) throw new VerityTruncatedError(label, size, g.dataBytes - size, size);
    const data = new FileByteSource(fd, { label });
    return {
      fd,
      label,
      superblock,
      g,
      spec: { algorithm: g.algorithm, hashType: g.hashType, salt },
      hashOffset,
      data,
      threads: options.threads ?? Math.min(availableParallelism(), 4),
    };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

function writeAll(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, position + done);
}

function writeLevel0(p: Plan, chunk: Level0Chunk): void {
  writeAll(p.fd, chunk.blocks, (p.g.levelStart[0]! + chunk.first) * p.g.hashBlockSize);
}

/** Levels 1.. computed from the level below as written, then the superblock, then the root. */
function finish(p: Plan): FormatVerityResult {
  const g = p.g;
  const hbs = g.hashBlockSize;
  // The file grew while level 0 was written: read the tree back through a fresh view.
  const tree = new FileByteSource(p.fd, { label: p.label });
  const perBatch = hashBlocksPerBatch(g, hbs);
  const batch = new SaltedBlocks(p.spec, hbs, perBatch * g.hashesPerBlock);
  for (let level = 1; level < g.levels; level++) {
    const below = g.levelStart[level - 1]!;
    const fill = (b: SaltedBlocks, firstChild: number, count: number): void => b.fillFromSource(tree, (below + firstChild) * hbs, count);
    for (let first = 0; first < g.levelSize[level]!; first += perBatch) {
      const count = Math.min(perBatch, g.levelSize[level]! - first);
      writeAll(p.fd, computeHashBlocks(g, level, first, count, batch, fill), (g.levelStart[level]! + first) * hbs);
    }
  }
  const after = new FileByteSource(p.fd, { label: p.label });
  const root =
    g.levels === 0
      ? new BlockHasher(p.spec, g.dataBlockSize).digest(after.read(0, g.dataBlockSize))
      : new BlockHasher(p.spec, hbs).digest(after.read(g.levelStart[g.levels - 1]! * hbs, hbs));
  // Like veritysetup: only the 512-byte superblock is written at hashOffset; the rest of that
  // hash block (and anything after the tree) is left as it is.
  writeAll(p.fd, encodeSuperblock(p.superblock), p.hashOffset);
  // veritysetup makes the hash device at least as large as the hash area (observed: a one-block
  // image without tree levels grows to hashStartBlock * hashBlockSize); never shrinks it.
  const treeEnd = g.hashEndBlock * hbs;
  if (fstatSync(p.fd).size < treeEnd) ftruncateSync(p.fd, treeEnd);
  fsyncSync(p.fd);
  return {
    rootHash: root.toString('hex'),
    salt: p.superblock.salt.toString('hex'),
    uuid: formatUuid(p.superblock.uuid),
    superblock: p.superblock,
    geometry: g,
  };
}

/**
 * Writes a verity superblock at `hashOffset` and the hash tree after it into the file itself,
 * byte for byte what `veritysetup format FILE FILE --hash-offset=H --data-blocks=N` writes given the
 * same salt and uuid. Returns the root hash (hex) and what else veritysetup would print.
 */
export function formatVeritySync(filePath: string, options: FormatVerityOptions): FormatVerityResult {
  const p = plan(filePath, options);
  try {
    for (const chunk of level0Sync(p.data, p.g, p.spec, p.label)) writeLevel0(p, chunk);
    return finish(p);
  } finally {
    closeSync(p.fd);
  }
}

/** formatVeritySync with the data level hashed on worker threads. */
export async function formatVerity(filePath: string, options: FormatVerityOptions): Promise<FormatVerityResult> {
  const p = plan(filePath, options);
  try {
    if (p.threads > 1 && p.g.levels > 0 && p.g.dataBytes >= (options.parallelMinBytes ?? PARALLEL_MIN_BYTES)) {
      for await (const chunk of level0Parallel(p.data, p.g, p.spec, p.label, p.threads - 1)) writeLevel0(p, chunk);
    } else {
      for (const chunk of level0Sync(p.data, p.g, p.spec, p.label)) writeLevel0(p, chunk);
    }
    return finish(p);
  } finally {
    closeSync(p.fd);
  }
}
