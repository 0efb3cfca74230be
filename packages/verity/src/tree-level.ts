import type { SaltedBlocks } from './block-hasher.js';
import { VerityMismatchError, VeritySpareAreaError } from './errors.js';
import { childCount, type TreeGeometry } from './geometry.js';

/**
 * Computing and comparing whole hash blocks of one level, shared by full verification, the tree
 * builder and the worker threads. A hash block of level i holds the digests of up to
 * hashesPerBlock consecutive blocks of the level below (data blocks for level 0), one every
 * slotSize bytes, and zeros everywhere else.
 */

/** Fills `batch` slots [0, count) with children [firstChild, firstChild+count) of the level being computed. */
export type FillChildren = (batch: SaltedBlocks, firstChild: number, count: number) => void;

/** Input bytes per batch: large enough for few syscalls, small enough to stay in L2/L3. */
const BATCH_INPUT_BYTES = 1024 * 1024;

/** Hash blocks computed per batch; the batch then holds that many times hashesPerBlock children. */
export function hashBlocksPerBatch(g: TreeGeometry, childBlockSize: number): number {
  return Math.max(1, Math.floor(BATCH_INPUT_BYTES / childBlockSize / g.hashesPerBlock));
}

/** Hash blocks of `level` from index `firstOut`, `outCount` of them, exactly as veritysetup writes them. */
export function computeHashBlocks(
  g: TreeGeometry,
  level: number,
  firstOut: number,
  outCount: number,
  batch: SaltedBlocks,
  fill: FillChildren,
): Buffer {
  const children = childCount(g, level);
  const hpb = g.hashesPerBlock;
  const out = Buffer.alloc(outCount * g.hashBlockSize);
  const perBatch = Math.max(1, Math.floor(batch.capacity / hpb));
  for (let j = 0; j < outCount; j += perBatch) {
    const firstChild = (firstOut + j) * hpb;
    const count = Math.min(Math.min(perBatch, outCount - j) * hpb, children - firstChild);
    if (count <= 0) break;
    fill(batch, firstChild, count);
    for (let k = 0; k * hpb < count; k++) {
      batch.digestsInto(k * hpb, Math.min(hpb, count - k * hpb), out, (j + k) * g.hashBlockSize, g.slotSize, g.digestSize);
    }
  }
  return out;
}

/** Number of children whose digests hash block `index` of `level` holds. */
export function childrenOf(g: TreeGeometry, level: number, index: number): number {
  return Math.max(0, Math.min(g.hashesPerBlock, childCount(g, level) - index * g.hashesPerBlock));
}

/**
 * Byte offset (inside the block) of the first non-zero byte outside the digests of hash block
 * `index` of `level`, or -1 when all padding is zero.
 */
export function firstNonZeroSpare(g: TreeGeometry, level: number, index: number, block: Buffer, offset = 0): number {
  const n = childrenOf(g, level, index);
  if (g.slotSize !== g.digestSize) {
    for (let s = 0; s < n; s++) {
      for (let p = s * g.slotSize + g.digestSize; p < (s + 1) * g.slotSize; p++) if (block[offset + p] !== 0) return p;
    }
  }
  for (let p = n * g.slotSize; p < g.hashBlockSize; p++) if (block[offset + p] !== 0) return p;
  return -1;
}

/** File byte offset of child `child` of a `level` hash block (a data block for level 0). */
export function childOffset(g: TreeGeometry, level: number, child: number): number {
  return level === 0 ? child * g.dataBlockSize : (g.levelStart[level - 1]! + child) * g.hashBlockSize;
}

/**
 * Compares a computed hash block with the stored one in the order veritysetup checks them
 * (digest of child 0, its slot padding, child 1, …, trailing spare area) and returns every
 * differing digest plus the first dirty padding byte, in that order (empty when identical).
 */
export function compareHashBlock(
  g: TreeGeometry,
  label: string,
  level: number,
  index: number,
  expected: Buffer,
  expectedOffset: number,
  stored: Buffer,
  storedOffset: number,
): VerityMismatchError[] {
  const hbs = g.hashBlockSize;
  if (expected.compare(stored, storedOffset, storedOffset + hbs, expectedOffset, expectedOffset + hbs) === 0) return [];
  const errors: VerityMismatchError[] = [];
  const n = childrenOf(g, level, index);
  const blockOffset = (g.levelStart[level]! + index) * hbs;
  let spareReported = false;
  for (let s = 0; s < n; s++) {
    const p = s * g.slotSize;
    if (expected.compare(stored, storedOffset + p, storedOffset + p + g.digestSize, expectedOffset + p, expectedOffset + p + g.digestSize) !== 0) {
      const child = index * g.hashesPerBlock + s;
      errors.push(new VerityMismatchError(label, level - 1, child, childOffset(g, level, child)));
    }
    for (let q = p + g.digestSize; q < p + g.slotSize && !spareReported; q++) {
      if (stored[storedOffset + q] !== 0) {
        errors.push(new VeritySpareAreaError(label, level, index, blockOffset + q));
        spareReported = true;
      }
    }
  }
  if (!spareReported) {
    const spare = firstNonZeroSpare(g, level, index, stored, storedOffset);
    if (spare >= 0) errors.push(new VeritySpareAreaError(label, level, index, blockOffset + spare));
  }
  return errors;
}
