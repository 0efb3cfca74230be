/**
 * The producer of BlockPrefetch: walks the image as the extraction does and decodes the items of
 * the sequence (data blocks, and the fragment block of each run of tails) in order into shared slots.
 */
import { workerData } from 'node:worker_threads';
import { walkNodes } from '@atomfs/tree';
import { CTL_DONE, CTL_POS, CTL_STOP, CTL_WANT, CTL_WORDS, isFragmentTail, prefetched, SequenceItems, SLOT_BUSY, SLOT_FAILED, SLOT_FILLED, SLOT_FREE, slotWord, type PrefetchData } from './block-prefetch.js';
import { FileSource } from './byte-source.js';
import { SquashFS } from './squashfs.js';
import { squashfsTree } from './tree.js';

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
    // The ring is full: sleep until the extracting thread has emptied half of it (it is at a
    // block below seq - slots now). Announce first, then re-read the position: see next().
    const wake = seq - (d.slots >> 1);
    Atomics.store(ctl, CTL_WANT, Math.max(1, wake));
    const pos = Atomics.load(ctl, CTL_POS);
    if (pos >= wake || Atomics.load(ctl, CTL_STOP) === 1) continue;
    Atomics.wait(ctl, CTL_POS, pos, 100);
  }
}

try {
  // Blocks are decoded into the slots; the cache only serves the fallback of codecs without decompressInto.
  const fs = new SquashFS(new FileSource(d.fd, d.offset, d.size), { reuseBlockBuffers: true, dataCacheBytes: 4 * d.slotSize + 1024 });
  const written = new Set<number>();
  const items = new SequenceItems();
  walk: for (const inode of walkNodes(squashfsTree(fs), typeof d.subdir === 'string' ? d.subdir : Buffer.from(d.subdir))) {
    if (!prefetched(inode)) continue;
    // The extraction writes a hard-linked file once and links its other names.
    if (inode.nlink > 1) {
      if (written.has(inode.ref)) continue;
      written.add(inode.ref);
    }
    const blocks = Math.ceil(inode.fileSize / d.slotSize);
    for (let i = 0; i < blocks; i++) {
      // A tail in the fragment block of the previous tail is no item of its own.
      if (!items.starts(inode, i)) continue;
      const tail = isFragmentTail(inode, i);
      const q = seq++;
      const c = claim(q);
      if (c === 'stop') break walk;
      if (c === 'skip') continue;
      const slot = q % d.slots;
      const into = data.subarray(slot * d.slotSize, (slot + 1) * d.slotSize);
      let outcome = SLOT_FILLED;
      try {
        // Decoded straight into the slot: no copy, and data blocks skip the cache.
        length[slot] = tail ? fs.readFragmentBlockInto(inode, into) : fs.readBlockInto(inode, i, into);
      } catch {
        outcome = SLOT_FAILED; // the extracting thread decodes it again and reports the error
      }
      Atomics.store(state, slot, slotWord(q, outcome));
      Atomics.notify(state, slot);
    }
  }
} catch {
  // The walk itself failed (corrupt directory): the consumer meets the same error on its own walk.
} finally {
  Atomics.store(ctl, CTL_DONE, 1);
  for (let i = 0; i < d.slots; i++) Atomics.notify(state, i);
}
