import { BlockHasher, SaltedBlocks, type HashSpec } from './block-hasher.js';
import { FileSource } from '@atomfs/io';
import { checkReadRange, type ByteSource } from './byte-source.js';
import { RootHashMismatchError, VerityArgumentError, VerityMismatchError, VeritySpareAreaError, VeritySuperblockError, VerityTruncatedError } from './errors.js';
import { SUPERBLOCK_SIZE, type TreeGeometry } from './geometry.js';
import { Lru } from '@atomfs/io';
import { parseRootHash } from './root-hash.js';
import { parseSuperblock, validateSuperblock, type VeritySuperblock } from './superblock.js';
import { firstNonZeroSpare } from './tree-level.js';

export interface VerifiedSourceOptions {
  /** Names the layer in every error message (e.g. its digest). */
  label: string;
  /** Budget for verified hash blocks kept in memory (default 4 MiB; at least one chain is kept). */
  hashCacheBytes?: number;
  /** Verified data blocks kept for unaligned neighbouring reads (default 16). */
  dataCacheBlocks?: number;
  /** Largest number of data blocks fetched with one underlying read (default 256 = 1 MiB). */
  maxRunBlocks?: number;
}

/** Counters, for tests and diagnostics. */
export interface VerifiedSourceStats {
  dataBlocksVerified: number;
  hashBlocksVerified: number;
  dataCacheHits: number;
  hashCacheHits: number;
}

/**
 * The data area of a verity-protected file, as a ByteSource: serves [0, dataBlocks*dataBlockSize)
 * and returns no byte of a data block before the block hashed to the digest the tree holds for it,
 * each hash block on the way having been checked up to the trusted root. The top block (or data
 * block 0 when there is no tree) is checked at construction, so a wrong root hash fails at open.
 * Synchronous and single-threaded, like the kernel's per-bio verification.
 */
export class VerifiedSource implements ByteSource {
  readonly size: number;
  readonly label: string;
  readonly stats: VerifiedSourceStats = { dataBlocksVerified: 0, hashBlocksVerified: 0, dataCacheHits: 0, hashCacheHits: 0 };
  private readonly root: Buffer;
  private readonly dataHasher: BlockHasher;
  private readonly hashHasher: BlockHasher;
  /** The verified top hash block (levels > 0), pinned. */
  private readonly top: Buffer | null;
  private readonly hashCache: Lru<number, Buffer>;
  private readonly dataCache: Lru<number, Buffer>;
  private readonly maxRun: number;
  private readonly spec: HashSpec;
  /** Salted slots the runs of data blocks are read into (made on first use). */
  private slots: SaltedBlocks | undefined;
  /** The leaf hash block used last (verified), and its index. */
  private lastLeaf: Buffer | undefined;
  private lastLeafIndex = -1;
  /** A data cache buffer evicted last, reused by the next cachePartial. */
  private spare: Buffer | undefined;
  /** hashesPerBlock^i for i = 0..levels, as doubles (exact for powers of two). */
  private readonly spans: number[];

  constructor(
    private readonly file: ByteSource,
    readonly geometry: TreeGeometry,
    salt: Buffer,
    rootHash: string | Buffer,
    options: VerifiedSourceOptions,
  ) {
    const g = geometry;
    this.label = options.label;
    this.root = parseRootHash(rootHash, g.digestSize, this.label);
    this.size = g.dataBytes;
    const spec: HashSpec = { algorithm: g.algorithm, hashType: g.hashType, salt };
    this.spec = spec;
    this.dataHasher = new BlockHasher(spec, g.dataBlockSize);
    this.hashHasher = new BlockHasher(spec, g.hashBlockSize);
    // Caller-tunable sizes: anything but a non-negative integer falls back to the default,
    // so a NaN can never turn a bounded cache into an unbounded one.
    const count = (v: number | undefined, fallback: number): number => (v !== undefined && Number.isSafeInteger(v) && v >= 0 ? v : fallback);
    const hashCacheBytes = count(options.hashCacheBytes, 4 * 1024 * 1024);
    // Keep at least one block per level so a descent never evicts the block it is about to use.
    this.hashCache = new Lru(Math.max(g.levels, Math.floor(hashCacheBytes / g.hashBlockSize)));
    // An evicted block's buffer takes the next copy (see cachePartial).
    this.dataCache = new Lru(count(options.dataCacheBlocks, 16), (evicted) => {
      this.spare = evicted;
    });
    this.maxRun = Math.max(1, count(options.maxRunBlocks, 256));
    this.spans = [];
    for (let i = 0; i <= g.levels; i++) this.spans.push(g.hashesPerBlock ** i);

    const treeEnd = g.hashEndBlock * g.hashBlockSize;
    const needed = Math.max(treeEnd, g.dataBytes);
    if (file.size < needed) throw new VerityTruncatedError(this.label, file.size, needed - file.size, file.size);

    if (g.levels === 0) {
      const offset = 0;
      const block = file.read(offset, g.dataBlockSize);
      const actual = this.dataHasher.digest(block);
      if (!actual.equals(this.root)) throw new RootHashMismatchError(this.label, this.root.toString('hex'), actual.toString('hex'), offset);
      this.stats.dataBlocksVerified++;
      this.dataCache.set(0, Buffer.from(block));
      this.top = null;
    } else {
      const offset = g.levelStart[g.levels - 1]! * g.hashBlockSize;
      const block = file.read(offset, g.hashBlockSize);
      const actual = this.hashHasher.digest(block);
      if (!actual.equals(this.root)) throw new RootHashMismatchError(this.label, this.root.toString('hex'), actual.toString('hex'), offset);
      this.checkSpare(g.levels - 1, 0, block);
      this.stats.hashBlocksVerified++;
      this.top = Buffer.from(block);
    }
  }

  read(position: number, length: number): Buffer {
    checkReadRange(this.label, position, length, this.size);
    const out = Buffer.allocUnsafe(length);
    this.readInto(position, length, out);
    return out;
  }

  /** read() into dst[0, length): nothing is written to dst before its data block verified. */
  readInto(position: number, length: number, out: Buffer): void {
    checkReadRange(this.label, position, length, this.size);
    if (out.length < length) throw new VerityArgumentError(this.label, `readInto: destination of ${out.length} bytes is shorter than ${length}`);
    if (length === 0) return;
    const dbs = this.geometry.dataBlockSize;
    const end = position + length;
    const last = Math.floor((end - 1) / dbs);
    let b = Math.floor(position / dbs);
    while (b <= last) {
      const cached = this.dataCache.get(b);
      if (cached !== undefined) {
        this.stats.dataCacheHits++;
        this.copyOut(cached, 0, b, position, end, out);
        b++;
        continue;
      }
      let runEnd = b;
      while (runEnd < last && runEnd - b + 1 < this.maxRun && !this.dataCache.has(runEnd + 1)) runEnd++;
      const count = runEnd - b + 1;
      const run = this.readRun(b, count);
      for (let k = 0; k < count; k++) {
        const blockNo = b + k;
        const block = run.block(k);
        // Verification first; only then may any byte of the block reach `out`.
        this.verifySlot(blockNo, run, k);
        this.copyOut(block, 0, blockNo, position, end, out);
        // Cache only blocks this read used partially: those are the ones a neighbouring
        // unaligned read (squashfs metadata blocks straddle 4 KiB) asks for next. A copy, so
        // the cache never pins the run's memory.
        const start = blockNo * dbs;
        if (start < position || start + dbs > end) this.cachePartial(blockNo, block, 0);
      }
      b = runEnd + 1;
    }
  }

  /**
   * Data blocks [first, first+count) in reused salted slots (valid until the next call), each
   * block beside its own copy of the salt so that it is hashed where it lies. From a file source
   * they are read with one readv straight into the slots (a fresh buffer per FUSE read cost page
   * faults, slow in VMs; a separate salted copy per block cost a memcpy); any other source goes
   * through its read().
   */
  private readRun(first: number, count: number): SaltedBlocks {
    const dbs = this.geometry.dataBlockSize;
    this.slots ??= new SaltedBlocks(this.spec, dbs, this.maxRun);
    const file = this.file;
    if (!(file instanceof FileSource) || file.fd < 0) {
      this.slots.fillFromSource(file, first * dbs, count);
      return this.slots;
    }
    checkReadRange(this.label, first * dbs, count * dbs, file.size);
    if (!this.slots.fillFromFd(file.fd, file.offset + first * dbs, count)) {
      throw new VerityTruncatedError(this.label, first * dbs, count * dbs, first * dbs);
    }
    return this.slots;
  }

  close(): void {
    this.slots = undefined;
    this.hashCache.clear();
    this.dataCache.clear();
    this.file.close?.();
  }

  /**
   * Keeps a copy of a verified data block, in the buffer of the block it evicts: a fresh 4 KiB
   * buffer per copy (two per squashfs block read) was a visible share of a FUSE server's CPU in a
   * verified sequential read. Cached blocks never leave this class (copyOut copies from them).
   */
  private cachePartial(blockNo: number, src: Buffer, srcOffset: number): void {
    const dbs = this.geometry.dataBlockSize;
    const copy = this.spare ?? Buffer.allocUnsafeSlow(dbs);
    this.spare = undefined;
    src.copy(copy, 0, srcOffset, srcOffset + dbs);
    this.dataCache.set(blockNo, copy);
  }

  /** Copies the part of data block `blockNo` (at src[srcOffset...]) that falls in [position, end) to its place in `out`. */
  private copyOut(src: Buffer, srcOffset: number, blockNo: number, position: number, end: number, out: Buffer): void {
    const start = blockNo * this.geometry.dataBlockSize;
    const from = Math.max(start, position);
    const to = Math.min(start + this.geometry.dataBlockSize, end);
    src.copy(out, from - position, srcOffset + from - start, srcOffset + to - start);
  }

  /** Checks data block `blockNo`, held in slot `k` of `run`, against the tree. */
  private verifySlot(blockNo: number, run: SaltedBlocks, k: number): void {
    const g = this.geometry;
    let expected: Buffer;
    let at = 0;
    if (g.levels === 0) {
      expected = this.root;
    } else {
      // Consecutive data blocks share a leaf (128 per 4 KiB leaf of sha256): keep the last one
      // at hand instead of asking the LRU for it each time. It is our own verified copy.
      const leafIndex = Math.floor(blockNo / g.hashesPerBlock);
      if (leafIndex !== this.lastLeafIndex) {
        this.lastLeaf = this.verifiedHashBlock(0, leafIndex);
        this.lastLeafIndex = leafIndex;
      }
      expected = this.lastLeaf!;
      at = (blockNo % g.hashesPerBlock) * g.slotSize;
    }
    if (!run.matches(k, expected, at, g.digestSize)) throw new VerityMismatchError(this.label, -1, blockNo, blockNo * g.dataBlockSize);
    this.stats.dataBlocksVerified++;
  }

  /**
   * Hash block `index` of `level`, verified against its parent up to the root. Walks up to the
   * nearest block already verified (cached or the pinned top), then down, checking each block.
   */
  private verifiedHashBlock(level: number, index: number): Buffer {
    const g = this.geometry;
    const top = g.levels - 1;
    // Find the lowest level at or above `level` whose needed block is already trusted.
    let known = level;
    let knownBlock: Buffer | undefined;
    // index at level j of the block on the path: floor(index / hpb^(j-level)).
    for (; known <= top; known++) {
      if (known === top) {
        knownBlock = this.top!;
        break;
      }
      const idx = Math.floor(index / this.spans[known - level]!);
      knownBlock = this.hashCache.get(g.levelStart[known]! + idx);
      if (knownBlock !== undefined) {
        this.stats.hashCacheHits++;
        break;
      }
    }
    let parent = knownBlock!;
    for (let j = known - 1; j >= level; j--) {
      const idx = Math.floor(index / this.spans[j - level]!);
      const fileBlock = g.levelStart[j]! + idx;
      const offset = fileBlock * g.hashBlockSize;
      const block = this.file.read(offset, g.hashBlockSize);
      const slot = (idx % g.hashesPerBlock) * g.slotSize;
      if (!this.hashHasher.matches(block, parent, slot, g.digestSize)) throw new VerityMismatchError(this.label, j, idx, offset);
      this.checkSpare(j, idx, block);
      this.stats.hashBlocksVerified++;
      // A copy: a source may hand out views of memory it can change (BufferSource-like).
      this.hashCache.set(fileBlock, Buffer.from(block));
      parent = block;
    }
    return parent;
  }

  /**
   * Padding of a verified hash block must be zero too (veritysetup verify insists; the digest
   * already covers it, so this only matters when the superblock lies about data_blocks while the
   * tree above is intact).
   */
  private checkSpare(level: number, index: number, block: Buffer): void {
    const p = firstNonZeroSpare(this.geometry, level, index, block);
    if (p >= 0) throw new VeritySpareAreaError(this.label, level, index, (this.geometry.levelStart[level]! + index) * this.geometry.hashBlockSize + p);
  }
}

export interface OpenVerifiedOptions extends Omit<VerifiedSourceOptions, 'label'> {
  /** Byte offset of the verity superblock (H: the squashfs size rounded up to 4096). */
  hashOffset: number;
  /** Trusted root hash, hex (e.g. from the layer annotation). */
  rootHash: string | Buffer;
  /** Names the layer in errors (e.g. its digest). */
  label: string;
  /** When given, the superblock must cover exactly this many data blocks (atomfs: hashOffset/4096). */
  expectedDataBlocks?: number;
  /**
   * When given, the superblock's algorithm must be one of these (e.g. ["sha256"]): the superblock
   * is not trusted, so a caller that knows the algorithm of its root hash can pin it.
   */
  algorithms?: readonly string[];
}

/** Reads and validates the superblock at `hashOffset` of `file`; returns it with the tree layout. */
export function readSuperblock(
  file: ByteSource,
  hashOffset: number,
  label: string,
): { superblock: VeritySuperblock; geometry: TreeGeometry } {
  if (!Number.isSafeInteger(hashOffset) || hashOffset < 0 || hashOffset % SUPERBLOCK_SIZE !== 0) {
    throw new VerityArgumentError(label, `hash offset ${hashOffset} is not a multiple of ${SUPERBLOCK_SIZE}`);
  }
  // Nothing after the data: the layer carries no verity data at all (atomfs: "asked for verity
  // but no data present"), which is not the same as a tree cut short.
  if (file.size === hashOffset) throw new VeritySuperblockError(label, hashOffset, 'no verity data: the file ends where the superblock should start');
  if (hashOffset + SUPERBLOCK_SIZE > file.size) {
    throw new VerityTruncatedError(label, hashOffset, SUPERBLOCK_SIZE, file.size);
  }
  const superblock = parseSuperblock(file.read(hashOffset, SUPERBLOCK_SIZE), label, hashOffset);
  const geometry = validateSuperblock(superblock, hashOffset, file.size, label);
  return { superblock, geometry };
}

/**
 * Opens the verified data area of a layer file whose superblock sits at `hashOffset`.
 * On success the returned source owns `file` (its close() closes it); on failure the caller keeps it.
 */
export function openVerified(file: ByteSource, options: OpenVerifiedOptions): VerifiedSource {
  const { superblock, geometry } = readSuperblock(file, options.hashOffset, options.label);
  if (options.expectedDataBlocks !== undefined && superblock.dataBlocks !== options.expectedDataBlocks) {
    throw new VeritySuperblockError(
      options.label,
      options.hashOffset,
      `covers ${superblock.dataBlocks} data blocks, expected ${options.expectedDataBlocks}`,
    );
  }
  if (options.algorithms !== undefined && !options.algorithms.some((a) => a.toLowerCase() === superblock.algorithm)) {
    throw new VeritySuperblockError(options.label, options.hashOffset, `algorithm ${JSON.stringify(superblock.algorithm)} is not allowed here`);
  }
  return new VerifiedSource(file, geometry, superblock.salt, options.rootHash, options);
}
