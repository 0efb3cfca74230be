import * as crypto from 'node:crypto';
import { readSync, readvSync } from 'node:fs';
import type { ByteSource } from './byte-source.js';

/** How blocks are hashed: hash type 1 puts the salt before the block, type 0 after it. */
export interface HashSpec {
  readonly algorithm: string;
  readonly hashType: 0 | 1;
  readonly salt: Buffer;
}

type HashToLatin1 = (algorithm: string, data: Buffer) => string;

/*
 * crypto.hash (Node ≥ 20.12) is the one-shot path: it skips the Hash object, and asking for a
 * latin1 string instead of a Buffer skips a Buffer allocation; for 4 KiB blocks that is the fastest
 * of createHash().update().digest(), crypto.hash(…, 'buffer') and crypto.hash(…, 'latin1') +
 * Buffer.write (figures: the commit that chose it). Hashing salt‖block as ONE contiguous buffer
 * (salt stored next to each block, see SaltedBlocks) is what makes the one-shot call possible.
 */
// 'binary' is node's name for latin1 in the crypto typings.
const oneShot = (crypto as unknown as { hash?: (a: string, d: Buffer, e: 'binary') => string }).hash;
const hashToLatin1: HashToLatin1 = oneShot
  ? (algorithm, data) => oneShot(algorithm, data, 'binary')
  : (algorithm, data) => crypto.createHash(algorithm).update(data).digest('binary');

/** Largest iovec count one readv may take (Linux IOV_MAX). */
const IOV_MAX = 1024;

/**
 * A batch buffer where every block sits next to its own copy of the salt, so that salt‖block
 * (type 1) or block‖salt (type 0) is one contiguous range: one hash call per block, no copying
 * when filled with readv straight from a file.
 */
export class SaltedBlocks {
  readonly stride: number;
  private readonly buf: Buffer;
  /** The block area of each slot (readv targets). */
  private readonly blockViews: Buffer[];
  /** The whole salted range of each slot (hash input). */
  private readonly hashViews: Buffer[];
  private readonly blockStart: number;

  constructor(
    private readonly spec: HashSpec,
    readonly blockSize: number,
    readonly capacity: number,
    reuse?: Buffer,
  ) {
    const saltLen = spec.salt.length;
    this.stride = blockSize + saltLen;
    this.buf = reuse !== undefined && reuse.length === this.stride * capacity ? reuse : Buffer.alloc(this.stride * capacity);
    this.blockStart = spec.hashType === 1 ? saltLen : 0;
    const saltStart = spec.hashType === 1 ? 0 : blockSize;
    this.blockViews = [];
    this.hashViews = [];
    for (let i = 0; i < capacity; i++) {
      const base = i * this.stride;
      spec.salt.copy(this.buf, base + saltStart);
      this.blockViews.push(this.buf.subarray(base + this.blockStart, base + this.blockStart + blockSize));
      this.hashViews.push(this.buf.subarray(base, base + this.stride));
    }
  }

  /** The same memory laid out for another salt of the same length (pooled workers reuse it). */
  withSpec(spec: HashSpec): SaltedBlocks {
    return new SaltedBlocks(spec, this.blockSize, this.capacity, this.buf);
  }

  /** The block stored in slot i (a view: valid until the next fill). */
  block(i: number): Buffer {
    return this.blockViews[i]!;
  }

  /**
   * Reads `count` consecutive blocks from a descriptor at `position` straight into the slots.
   * Returns false when the file ended early (the caller reports truncation with its own label).
   */
  fillFromFd(fd: number, position: number, count: number): boolean {
    let i = 0;
    while (i < count) {
      const n = Math.min(count - i, IOV_MAX);
      const want = n * this.blockSize;
      const got = readvSync(fd, this.blockViews.slice(i, i + n), position + i * this.blockSize);
      if (got !== want) {
        // Short readv (rare: signals, odd files): finish block by block from where it stopped.
        let done = got;
        while (done < want) {
          const slot = i + Math.floor(done / this.blockSize);
          const inBlock = done % this.blockSize;
          const r = readSync(fd, this.blockViews[slot]!, inBlock, this.blockSize - inBlock, position + i * this.blockSize + done);
          if (r === 0) return false;
          done += r;
        }
      }
      i += n;
    }
    return true;
  }

  /** Copies `count` consecutive blocks from `src` at `offset` into the slots. */
  fillFromBuffer(src: Buffer, offset: number, count: number): void {
    for (let i = 0; i < count; i++) {
      src.copy(this.buf, i * this.stride + this.blockStart, offset + i * this.blockSize, offset + (i + 1) * this.blockSize);
    }
  }

  /** Reads `count` consecutive blocks through a ByteSource. */
  fillFromSource(source: ByteSource, position: number, count: number): void {
    this.fillFromBuffer(source.read(position, count * this.blockSize), 0, count);
  }

  /** Digest of slot i as a latin1 string (one char per byte: compares and writes without allocating Buffers). */
  digest(i: number): string {
    return hashToLatin1(this.spec.algorithm, this.hashViews[i]!);
  }

  /**
   * True when slot i hashes to the digest stored at expected[offset, offset+digestSize), compared
   * byte by byte: no Buffer is made of the digest nor any string of `expected` (a subarray and a
   * string per 4 KiB block were a fifth of verification's overhead on a FUSE read).
   */
  matches(i: number, expected: Buffer, offset: number, digestSize: number): boolean {
    const d = this.digest(i);
    if (d.length !== digestSize) return false;
    for (let k = 0; k < digestSize; k++) if (d.charCodeAt(k) !== expected[offset + k]) return false;
    return true;
  }

  /** Writes the digests of slots [first, first+count) into `out`, one every `slotSize` bytes from `outOffset`. */
  digestsInto(first: number, count: number, out: Buffer, outOffset: number, slotSize: number, digestSize: number): void {
    const algorithm = this.spec.algorithm;
    for (let i = 0; i < count; i++) {
      out.write(hashToLatin1(algorithm, this.hashViews[first + i]!), outOffset + i * slotSize, digestSize, 'latin1');
    }
  }
}

/** Hashes single blocks (the random-access read path), salted as `spec` says. */
export class BlockHasher {
  private readonly scratch: SaltedBlocks;

  constructor(spec: HashSpec, blockSize: number) {
    this.scratch = new SaltedBlocks(spec, blockSize, 1);
  }

  /** Digest of `block` (exactly blockSize bytes) as a Buffer. */
  digest(block: Buffer): Buffer {
    this.scratch.fillFromBuffer(block, 0, 1);
    return Buffer.from(this.scratch.digest(0), 'latin1');
  }

  /** True when `block` hashes to the digest stored at expected[offset, offset+digestSize). */
  matches(block: Buffer, expected: Buffer, offset: number, digestSize: number): boolean {
    this.scratch.fillFromBuffer(block, 0, 1);
    return this.scratch.matches(0, expected, offset, digestSize);
  }
}
