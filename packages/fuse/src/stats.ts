/**
 * Request counters shared by every thread of one server through a SharedArrayBuffer, so the
 * main thread can read them while the session threads are blocked in read(2).
 */
import { opcodeName } from './wire/opcodes.js';

const OPCODE_SLOTS = 64;
const SLOT_ERRORS = OPCODE_SLOTS;
const SLOT_FAILURES = OPCODE_SLOTS + 1;
const SLOT_READ_BYTES = OPCODE_SLOTS + 2;
const SLOT_FORWARDED = OPCODE_SLOTS + 3;
const SLOT_OTHER = OPCODE_SLOTS + 4;
const SLOTS = OPCODE_SLOTS + 5;

export interface StatsSnapshot {
  /** Requests received per opcode name (READ counts both inline and forwarded). */
  requests: Record<string, number>;
  /** Error replies (FuseErrno and EIO). */
  errors: number;
  /** Exceptions other than FuseErrno (answered EIO and logged). */
  failures: number;
  readBytes: number;
  /** READs handed to read workers. */
  forwardedReads: number;
}

export class Stats {
  readonly buffer: SharedArrayBuffer;
  private readonly counters: BigInt64Array;

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(SLOTS * 8);
    this.counters = new BigInt64Array(this.buffer);
  }

  request(opcode: number): void {
    Atomics.add(this.counters, opcode > 0 && opcode < OPCODE_SLOTS ? opcode : SLOT_OTHER, 1n);
  }

  error(): void {
    Atomics.add(this.counters, SLOT_ERRORS, 1n);
  }

  failure(): void {
    Atomics.add(this.counters, SLOT_FAILURES, 1n);
  }

  readBytes(n: number): void {
    Atomics.add(this.counters, SLOT_READ_BYTES, BigInt(n));
  }

  forwarded(): void {
    Atomics.add(this.counters, SLOT_FORWARDED, 1n);
  }

  snapshot(): StatsSnapshot {
    const requests: Record<string, number> = {};
    for (let op = 1; op < OPCODE_SLOTS; op++) {
      const n = Number(Atomics.load(this.counters, op));
      if (n > 0) requests[opcodeName(op)] = n;
    }
    const other = Number(Atomics.load(this.counters, SLOT_OTHER));
    if (other > 0) requests.OTHER = other;
    return {
      requests,
      errors: Number(Atomics.load(this.counters, SLOT_ERRORS)),
      failures: Number(Atomics.load(this.counters, SLOT_FAILURES)),
      readBytes: Number(Atomics.load(this.counters, SLOT_READ_BYTES)),
      forwardedReads: Number(Atomics.load(this.counters, SLOT_FORWARDED)),
    };
  }
}
