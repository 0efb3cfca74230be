import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { FileSource } from '@atomfs/io';
import { NO_FRAGMENT, type FileInode, type Inode } from './inode.js';
import type { SquashFS } from './squashfs.js';

/** workerData of the prefetch thread. */
export interface PrefetchData {
  fd: number;
  offset: number;
  size: number;
  /** Bytes arrive as a Uint8Array (structured clone). */
  subdir: string | Uint8Array;
  shared: SharedArrayBuffer;
  slots: number;
  slotSize: number;
}

// Int32 control words at the start of the shared buffer, then per-slot state and length.
export const CTL_DONE = 0; // the producer walked the whole tree, or stopped
export const CTL_STOP = 1; // the consumer wants the producer to stop
/** Sequence number of the block the extracting thread needs next (the helper stays ahead of it). */
export const CTL_POS = 2;
/**
 * Set by a helper that found the ring full: the block sequence number the extracting thread must
 * reach before the helper wants waking (0 = not waiting). Waking the helper on every freed slot
 * cost a futex wake per block (expensive with many small files); it now sleeps until half the ring is free.
 */
export const CTL_WANT = 3;
export const CTL_WORDS = 4;
/**
 * Each slot's state word holds the sequence number of the block it is for (mod 2^29) and a
 * state, so that a claim is one compare-and-swap: block q uses slot q % slots.
 */
export const SLOT_FREE = 0; // nobody has claimed block q yet
export const SLOT_BUSY = 1; // the helper is decoding block q
export const SLOT_FILLED = 2;
/** The helper could not decode block q: the extracting thread decodes it itself (and gets the error). */
export const SLOT_FAILED = 3;
export function slotWord(seq: number, state: number): number {
  return ((seq & 0x1fffffff) << 2) | state;
}

/**
 * Every non-empty file's blocks are prefetched, tails in fragment blocks included: decoding
 * fragment blocks was a large part of the extracting thread's time for an image of many small files.
 */
export function prefetched(inode: Inode): inode is FileInode {
  return inode.kind === 'file' && inode.fileSize > 0;
}

/**
 * Whether block `index` of a file is its tail in a fragment block. The sequence both threads
 * follow has an item per data block and one per run of tails sharing a fragment block (a new
 * item whenever a tail's fragment differs from the previous tail's): the helper decodes that
 * fragment block once, and the extracting thread cuts the tails of every file of the run from it.
 */
export function isFragmentTail(inode: FileInode, index: number): boolean {
  return index === inode.blockCount && inode.fragment !== NO_FRAGMENT;
}

/** The rule both threads number the sequence by (one instance per thread, fed every block in order). */
export class SequenceItems {
  private fragment = -1;

  /** Whether block `index` of `inode` is a new item: every data block; a tail only when its fragment block is not the previous tail's. */
  starts(inode: FileInode, index: number): boolean {
    if (!isFragmentTail(inode, index)) return true;
    if (inode.fragment === this.fragment) return false;
    this.fragment = inode.fragment;
    return true;
  }
}

/** Below this much image data a second thread costs more to start (~50 ms) than it saves. */
const MIN_BYTES = 16 << 20;
const BUFFER_BYTES = 8 << 20;

/**
 * Decodes an extraction's file blocks ahead on a second thread. Decoding and writing were both
 * on the extracting thread (decompression a quarter of its time), leaving a core idle;
 * unsquashfs decompresses on every core. Both threads walk the same image in the same order, so
 * the data blocks and fragment blocks of the files the extraction writes form one sequence (see
 * isFragmentTail). Each item is claimed by whichever thread gets to it first (a compare-and-swap on
 * its ring slot's state word): the helper decodes its blocks into the slots, the
 * extracting thread writes them from there, and decodes itself any block the helper has not
 * claimed yet — so it never waits for a helper that is behind. A block the helper fails on is
 * decoded again by the extracting thread, so errors stay the reader's own typed errors.
 */
export class BlockPrefetch {
  private readonly ctl: Int32Array;
  private readonly state: Int32Array;
  private readonly length: Int32Array;
  private readonly dataStart: number;
  private seq = 0;
  private broken = false;
  private readonly items = new SequenceItems();
  /** The current run's fragment block as the helper decoded it (length -1: decoded here instead). */
  private fragmentLength = -1;
  private readonly fragmentCopy: Buffer;

  private constructor(
    private readonly worker: Worker,
    private readonly shared: SharedArrayBuffer,
    private readonly slots: number,
    private readonly slotSize: number,
  ) {
    this.ctl = new Int32Array(shared, 0, CTL_WORDS);
    this.state = new Int32Array(shared, CTL_WORDS * 4, slots);
    this.length = new Int32Array(shared, (CTL_WORDS + slots) * 4, slots);
    this.dataStart = (CTL_WORDS + 2 * slots) * 4;
    this.fragmentCopy = Buffer.allocUnsafe(slotSize);
    for (let k = 0; k < slots; k++) this.state[k] = slotWord(k, SLOT_FREE);
    // A worker that dies (or fails to start) must not leave the consumer waiting.
    worker.on('error', () => this.markDone());
    worker.on('exit', () => this.markDone());
    worker.unref();
  }

  static start(fs: SquashFS, subdir: string | Buffer): BlockPrefetch | undefined {
    const source = fs.source;
    if (!(source instanceof FileSource) || availableParallelism() < 2 || fs.superblock.bytesUsed < MIN_BYTES) return undefined;
    const slotSize = fs.superblock.blockSize;
    const slots = Math.max(4, Math.floor(BUFFER_BYTES / slotSize));
    const shared = new SharedArrayBuffer((CTL_WORDS + 2 * slots) * 4 + slots * slotSize);
    const data: PrefetchData = { fd: source.fd, offset: source.offset, size: source.size, subdir, shared, slots, slotSize };
    return new BlockPrefetch(new Worker(new URL('./prefetch-worker.js', import.meta.url), { workerData: data }), shared, slots, slotSize);
  }

  private markDone(): void {
    Atomics.store(this.ctl, CTL_DONE, 1);
    for (let i = 0; i < this.slots; i++) Atomics.notify(this.state, i);
  }

  /**
   * Hands `use` block `index` of `inode` (blocks of a file in order, files in walk order): a view
   * of shared memory (valid during the call) when the helper decoded it, else decoded here.
   */
  next(fs: SquashFS, inode: FileInode, index: number, use: (data: Buffer) => void): void {
    if (isFragmentTail(inode, index)) return this.tail(fs, inode, index, use);
    const q = this.seq++;
    const slot = q % this.slots;
    const view = this.take(q);
    if (view === null) return use(fs.readBlock(inode, index));
    try {
      use(view);
    } finally {
      this.release(q, slot);
    }
  }

  /** A file's tail: cut from the current fragment block, fetching that first if it is a new one. */
  private tail(fs: SquashFS, inode: FileInode, index: number, use: (data: Buffer) => void): void {
    if (this.items.starts(inode, index)) {
      const q = this.seq++;
      const view = this.take(q);
      this.fragmentLength = -1;
      if (view !== null) {
        // Copied out so the slot is free at once (a run of tails can be long).
        this.fragmentLength = view.copy(this.fragmentCopy);
        this.release(q, q % this.slots);
      }
    }
    const tail = inode.fileSize - index * fs.superblock.blockSize;
    const off = inode.fragmentOffset;
    // Decoded here (own cache) when the helper did not, or when the tail is out of bounds: then
    // the reader raises its own error for it.
    if (this.fragmentLength < 0 || off + tail > this.fragmentLength) return use(fs.readBlock(inode, index));
    use(this.fragmentCopy.subarray(off, off + tail));
  }

  /**
   * Item q of the sequence: a view of its slot when the helper decoded it (release it after
   * use), or null when this thread is to decode it (the slot has moved on already).
   */
  private take(q: number): Buffer | null {
    Atomics.store(this.ctl, CTL_POS, q);
    // Store first, then look: a helper that set CTL_WANT after this load reads the new position.
    const want = Atomics.load(this.ctl, CTL_WANT);
    if (want !== 0 && q >= want && Atomics.compareExchange(this.ctl, CTL_WANT, want, 0) === want) Atomics.notify(this.ctl, CTL_POS);
    const slot = q % this.slots;
    // Not claimed by the helper yet: take it (the slot moves on to item q + slots).
    if (this.broken || Atomics.compareExchange(this.state, slot, slotWord(q, SLOT_FREE), slotWord(q + this.slots, SLOT_FREE)) === slotWord(q, SLOT_FREE)) {
      return null;
    }
    // The helper claimed it: wait while it decodes.
    for (;;) {
      const w = Atomics.load(this.state, slot);
      if (w !== slotWord(q, SLOT_BUSY)) break;
      if (Atomics.load(this.ctl, CTL_DONE) === 1 && Atomics.load(this.state, slot) === w) {
        // The helper is gone (died, or was stopped) without finishing it.
        this.broken = true;
        this.release(q, slot);
        return null;
      }
      Atomics.wait(this.state, slot, w, 100);
    }
    if (Atomics.load(this.state, slot) === slotWord(q, SLOT_FILLED)) return Buffer.from(this.shared, this.dataStart + slot * this.slotSize, this.length[slot]!);
    this.release(q, slot);
    return null;
  }

  /** Frees item q's slot for item q + slots. The helper never waits on a slot word (it waits for CTL_POS): no wake. */
  private release(q: number, slot: number): void {
    Atomics.store(this.state, slot, slotWord(q + this.slots, SLOT_FREE));
  }

  /** Stops the producer (also after a failure) and waits for the thread to end. */
  async stop(): Promise<void> {
    Atomics.store(this.ctl, CTL_STOP, 1);
    Atomics.notify(this.ctl, CTL_POS);
    await this.worker.terminate();
  }
}
