/**
 * The producer of BlockPrefetch: walks the image as the extraction does and decodes the blocks
 * of every file the extraction writes that is at least a block long, in order, into shared slots.
 */
import { workerData } from 'node:worker_threads';
import { CTL_DONE, CTL_POS, CTL_STOP, CTL_WORDS, prefetched, SLOT_BUSY, SLOT_FAILED, SLOT_FILLED, SLOT_FREE, slotWord, type PrefetchData } from './block-prefetch.js';
import { FileSource } from './byte-source.js';
import { walkTree } from './paths.js';
import { SquashFS } from './squashfs.js';

const d = workerData as PrefetchData;
const ctl = new Int32Array(d.shared, 0, CTL_WORDS);
const state = new Int32Array(d.shared, CTL_WORDS * 4, d.slots);
const length = new Int32Array(d.shared, (CTL_WORDS + d.slots) * 4, d.slots);
const data = Buffer.from(d.shared, (CTL_WORDS + 2 * d.slots) * 4, d.slots * d.slotSize);
let seq = 0;

/** Blocks the helper keeps between itself and the extracting thread, so the two do not race for the same block. */
const LEAD = 2;

/**
 * Claims block `seq` for decoding: waits until its slot is free for it (the block `slots` earlier
 * has been written out). 'skip' when the extracting thread took it or is already past it;
 * 'stop' when asked to stop.
 */
function claim(seq: number): 'claimed' | 'skip' | 'stop' {
  const slot = seq % d.slots;
  const want = slotWord(seq, SLOT_FREE);
  for (;;) {
    if (Atomics.load(ctl, CTL_STOP) === 1) return 'stop';
    if (seq < Atomics.load(ctl, CTL_POS) + LEAD) return 'skip';
    const w = Atomics.compareExchange(state, slot, want, slotWord(seq, SLOT_BUSY));
    if (w === want) return 'claimed';
    if (w === slotWord(seq + d.slots, SLOT_FREE)) return 'skip'; // taken by the extracting thread
    Atomics.wait(state, slot, w, 100);
  }
}

try {
  // reuseBlockBuffers: each decoded block is copied into its slot before the next is read.
  const fs = new SquashFS(new FileSource(d.fd, d.offset, d.size), { reuseBlockBuffers: true, dataCacheBytes: 2 * d.slotSize + 1024 });
  const written = new Set<number>();
  walk: for (const e of walkTree(fs, d.subdir)) {
    const inode = e.inode;
    if (!prefetched(inode, d.slotSize)) continue;
    // The extraction writes a hard-linked file once and links its other names.
    if (inode.nlink > 1) {
      if (written.has(inode.ref)) continue;
      written.add(inode.ref);
    }
    const blocks = Math.ceil(inode.fileSize / d.slotSize);
    // Files the extracting thread has already reached are left to it.
    if (seq + blocks <= Atomics.load(ctl, CTL_POS) + LEAD) {
      seq += blocks;
      continue;
    }
    for (let i = 0; i < blocks; i++, seq++) {
      const c = claim(seq);
      if (c === 'stop') break walk;
      if (c === 'skip') continue;
      const slot = seq % d.slots;
      let outcome = SLOT_FILLED;
      try {
        const b = fs.readBlock(inode, i);
        b.copy(data, slot * d.slotSize);
        length[slot] = b.length;
      } catch {
        outcome = SLOT_FAILED; // the extracting thread decodes it again and reports the error
      }
      Atomics.store(state, slot, slotWord(seq, outcome));
      Atomics.notify(state, slot);
    }
  }
} catch {
  // The walk itself failed (corrupt directory): the consumer meets the same error on its own walk.
} finally {
  Atomics.store(ctl, CTL_DONE, 1);
  for (let i = 0; i < d.slots; i++) Atomics.notify(state, i);
}
