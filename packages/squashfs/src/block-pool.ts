/**
 * Recycled buffers for decoded data blocks. Decoding every block into fresh memory made the
 * first pass over a file pay a page fault per 4 KiB of output (a quarter of a FUSE server's CPU
 * in a cold sequential read, on this VM) until the garbage collector freed enough to be reused.
 * With recycling, the blocks the cache evicts become the buffers the next blocks decode into.
 *
 * Only for callers that never keep a decoded block past their next read of the same image
 * (SquashfsOptions.reuseBlockBuffers): a recycled buffer is overwritten in place.
 */
export class BlockPool {
  private readonly free: ArrayBuffer[] = [];
  /** Every buffer this pool handed out, so eviction can tell its own from foreign ones. */
  private readonly mine = new WeakSet<ArrayBufferLike>();

  constructor(
    readonly slotSize: number,
    /** Spare buffers kept at most; more go to the garbage collector. */
    private readonly maxFree = 4,
  ) {}

  /** A buffer of slotSize bytes, contents undefined. */
  take(): Buffer {
    const ab = this.free.pop();
    if (ab !== undefined) return Buffer.from(ab, 0, this.slotSize);
    const b = Buffer.allocUnsafeSlow(this.slotSize); // its own ArrayBuffer, offset 0
    this.mine.add(b.buffer);
    return b;
  }

  /** Give back a view of a buffer from take(); anything else is ignored. */
  give(view: Buffer): void {
    if (this.free.length < this.maxFree && this.mine.has(view.buffer)) this.free.push(view.buffer as ArrayBuffer);
  }
}
