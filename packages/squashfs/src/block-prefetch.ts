import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { FileSource } from './byte-source.js';
import type { FileInode, Inode } from './inode.js';
import type { SquashFS } from './squashfs.js';

/** workerData of the prefetch thread. */
export interface PrefetchData {
  fd: number;
  offset: number;
  size: number;
  subdir: string;
  shared: SharedArrayBuffer;
  slots: number;
  slotSize: number;
}

// Int32 control words at the start of the shared buffer, then per-slot state and length.
export const CTL_DONE = 0; // the producer walked the whole tree, or stopped
export const CTL_STOP = 1; // the consumer wants the producer to stop
/** Sequence number of the block the extracting thread needs next (the helper stays ahead of it). */
export const CTL_POS = 2;
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

/** Only files of at least one full block are prefetched; tails of smaller ones sit in shared fragment blocks. */
export function prefetched(inode: Inode, blockSize: number): inode is FileInode {
  return inode.kind === 'file' && inode.fileSize >= blockSize;
}

/** Below this much image data a second thread costs more to start (~50 ms) than it saves. */
const MIN_BYTES = 16 << 20;
const BUFFER_BYTES = 8 << 20;

/**
 * Decodes an extraction's file blocks ahead on a second thread. Decoding and writing were both
 * on the extracting thread (decompression a quarter of its time), leaving a core idle;
 * unsquashfs decompresses on every core. Both threads walk the same image in the same order, so
 * the blocks of the files the extraction writes (those at least a block long) form one
 * sequence. Each block is claimed by whichever thread gets to it first (a compare-and-swap on
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
    for (let k = 0; k < slots; k++) this.state[k] = slotWord(k, SLOT_FREE);
    // A worker that dies (or fails to start) must not leave the consumer waiting.
    worker.on('error', () => this.markDone());
    worker.on('exit', () => this.markDone());
    worker.unref();
  }

  static start(fs: SquashFS, subdir: string): BlockPrefetch | undefined {
    const source = fs.source;
    if (!(source instanceof FileSource) || availableParallelism() < 2 || fs.superblock.bytesUsed < MIN_BYTES) return undefined;
    const slotSize = fs.superblock.blockSize;
    const slots = Math.max(4, Math.floor(BUFFER_BYTES / slotSize));
    const shared = new SharedArrayBuffer((CTL_WORDS + 2 * slots) * 4 + slots * slotSize);
    const data: PrefetchData = { fd: source.descriptor, offset: source.offset, size: source.size, subdir, shared, slots, slotSize };
    return new BlockPrefetch(new Worker(new URL('./prefetch-worker.js', import.meta.url), { workerData: data }), shared, slots, slotSize);
  }

  private markDone(): void {
    Atomics.store(this.ctl, CTL_DONE, 1);
    for (let i = 0; i < this.slots; i++) Atomics.notify(this.state, i);
  }

  /**
   * Hands `use` block `index` of `inode`, the next one of the sequence: a view of a shared slot
   * (valid during the call) when the helper decoded it, else decoded here.
   */
  next(fs: SquashFS, inode: FileInode, index: number, use: (data: Buffer) => void): void {
    const q = this.seq++;
    Atomics.store(this.ctl, CTL_POS, q);
    const slot = q % this.slots;
    const release = (): void => {
      Atomics.store(this.state, slot, slotWord(q + this.slots, SLOT_FREE));
      Atomics.notify(this.state, slot);
    };
    // Not claimed by the helper yet: take it (the slot moves on to block q + slots) and decode here.
    if (this.broken || Atomics.compareExchange(this.state, slot, slotWord(q, SLOT_FREE), slotWord(q + this.slots, SLOT_FREE)) === slotWord(q, SLOT_FREE)) {
      return use(fs.readBlock(inode, index));
    }
    // The helper claimed it: wait while it decodes.
    for (;;) {
      const w = Atomics.load(this.state, slot);
      if (w !== slotWord(q, SLOT_BUSY)) break;
      if (Atomics.load(this.ctl, CTL_DONE) === 1 && Atomics.load(this.state, slot) === w) {
        // The helper is gone (died, or was stopped) without finishing it.
        this.broken = true;
        release();
        return use(fs.readBlock(inode, index));
      }
      Atomics.wait(this.state, slot, w, 100);
    }
    try {
      if (Atomics.load(this.state, slot) === slotWord(q, SLOT_FILLED)) use(Buffer.from(this.shared, this.dataStart + slot * this.slotSize, this.length[slot]!));
      else use(fs.readBlock(inode, index));
    } finally {
      release();
    }
  }

  /** Stops the producer (also after a failure) and waits for the thread to end. */
  async stop(): Promise<void> {
    Atomics.store(this.ctl, CTL_STOP, 1);
    for (let i = 0; i < this.slots; i++) Atomics.notify(this.state, i);
    await this.worker.terminate();
  }
}
