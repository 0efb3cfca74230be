import type { ByteSource } from './byte-source.js';
import { ByteRangeError, inRange } from './errors.js';

/** A Buffer as a source (tests, images held in memory). read() returns views of it. */
export class BufferSource implements ByteSource {
  constructor(
    private readonly buf: Buffer,
    readonly label = 'buffer',
  ) {}

  get size(): number {
    return this.buf.length;
  }

  read(position: number, length: number): Buffer {
    this.check(position, length);
    return this.buf.subarray(position, position + length);
  }

  readInto(position: number, length: number, dst: Buffer): void {
    this.check(position, length);
    this.buf.copy(dst, 0, position, position + length);
  }

  /** Packages give their own error types by overriding this. */
  protected rangeError(position: number, length: number): Error {
    return new ByteRangeError(this.label, position, length, this.buf.length);
  }

  private check(position: number, length: number): void {
    if (!inRange(position, length, this.buf.length)) throw this.rangeError(position, length);
  }
}
