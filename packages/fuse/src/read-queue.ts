/**
 * Hands READ requests from the session thread to read workers through shared memory.
 *
 * A bounded multi-consumer ring (Vyukov's sequence-numbered slots) with one producer: the
 * session thread blocks in read(2) on /dev/fuse, so it cannot use message ports (their
 * delivery needs the receiving event loop; here the consumers block in Atomics.wait instead,
 * which wakes within microseconds and uses no libuv threads).
 */

const STATE = 0; // 0 running, 1 stopped
const EVENT = 1; // futex word: bumped on every push and on stop
const HEAD = 2; // next position to consume
const TAIL = 3; // next position to produce
const CTL_INTS = 8;

export interface QueuedRead {
  unique: bigint;
  nodeid: bigint;
  fh: bigint;
  offset: bigint;
  size: number;
}

export class ReadQueue {
  readonly buffer: SharedArrayBuffer;
  private readonly capacity: number;
  private readonly mask: number;
  private readonly ctl: Int32Array;
  private readonly seq: Int32Array;
  private readonly sizes: Uint32Array;
  private readonly data: BigUint64Array;

  /** `capacity` must be a power of two (positions wrap modulo 2^32). */
  static create(capacity = 256): ReadQueue {
    if (!Number.isInteger(capacity) || capacity < 2 || capacity > 65536 || (capacity & (capacity - 1)) !== 0) {
      throw new RangeError(`read queue capacity must be a power of two in 2..65536, got ${capacity}`);
    }
    const buffer = new SharedArrayBuffer(CTL_INTS * 4 + capacity * 8 + capacity * 32);
    const q = new ReadQueue(buffer);
    for (let i = 0; i < capacity; i++) q.seq[i] = i;
    return q;
  }

  /** Attaches to a queue created (and sent over) by another thread. */
  constructor(buffer: SharedArrayBuffer) {
    const capacity = (buffer.byteLength - CTL_INTS * 4) / 40;
    if (!Number.isInteger(capacity) || capacity < 2) throw new RangeError('not a read queue buffer');
    this.buffer = buffer;
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.ctl = new Int32Array(buffer, 0, CTL_INTS);
    this.seq = new Int32Array(buffer, CTL_INTS * 4, capacity);
    this.sizes = new Uint32Array(buffer, CTL_INTS * 4 + capacity * 4, capacity);
    this.data = new BigUint64Array(buffer, CTL_INTS * 4 + capacity * 8, capacity * 4);
  }

  get stopped(): boolean {
    return Atomics.load(this.ctl, STATE) !== 0;
  }

  /** Producer side (one thread only). false ⇒ queue full or stopped: serve the READ yourself. */
  push(unique: bigint, nodeid: bigint, fh: bigint, offset: bigint, size: number): boolean {
    if (this.stopped) return false;
    const pos = Atomics.load(this.ctl, TAIL);
    const slot = pos & this.mask;
    if (Atomics.load(this.seq, slot) !== pos) return false; // a consumer still owns this slot
    const d = slot * 4;
    this.data[d] = unique;
    this.data[d + 1] = nodeid;
    this.data[d + 2] = fh;
    this.data[d + 3] = offset;
    this.sizes[slot] = size;
    Atomics.store(this.seq, slot, (pos + 1) | 0); // publish
    Atomics.store(this.ctl, TAIL, (pos + 1) | 0);
    Atomics.add(this.ctl, EVENT, 1);
    Atomics.notify(this.ctl, EVENT, 1);
    return true;
  }

  /**
   * Consumer side: the next READ, blocking until one arrives. undefined ⇒ the queue was
   * stopped (remaining entries are still drained first).
   */
  pop(): QueuedRead | undefined {
    for (;;) {
      const event = Atomics.load(this.ctl, EVENT);
      const pos = Atomics.load(this.ctl, HEAD);
      const slot = pos & this.mask;
      const seq = Atomics.load(this.seq, slot);
      const diff = (seq - ((pos + 1) | 0)) | 0;
      if (diff === 0) {
        if (Atomics.compareExchange(this.ctl, HEAD, pos, (pos + 1) | 0) !== pos) continue; // another worker took it
        const d = slot * 4;
        const item: QueuedRead = {
          unique: this.data[d]!,
          nodeid: this.data[d + 1]!,
          fh: this.data[d + 2]!,
          offset: this.data[d + 3]!,
          size: this.sizes[slot]!,
        };
        Atomics.store(this.seq, slot, (pos + this.capacity) | 0); // hand the slot back to the producer
        return item;
      }
      if (diff < 0) {
        // Empty. Sleep until a push/stop changes EVENT (returns at once if it already did).
        if (this.stopped) return undefined;
        Atomics.wait(this.ctl, EVENT, event, 1000);
      }
      // diff > 0: HEAD moved under us; retry.
    }
  }

  /** Wakes every consumer; they return undefined once the queue is empty. */
  stop(): void {
    Atomics.store(this.ctl, STATE, 1);
    Atomics.add(this.ctl, EVENT, 1);
    Atomics.notify(this.ctl, EVENT);
  }
}
