import type { ByteSource } from './byte-source.js';
import type { ByteLru } from './cache.js';
import type { Decompressor } from './compression/decompressor.js';
import { CorruptImageError, DecompressError } from './errors.js';

/** Uncompressed size of every metadata block but the last of a table. */
export const METADATA_BLOCK_SIZE = 8192;
const UNCOMPRESSED_BIT = 0x8000;

/** One decoded metadata block and where the next block of the same table starts. */
export interface MetadataBlock {
  data: Buffer;
  next: number;
}

/** A position inside a metadata table: the absolute position of a block and an offset in its decoded bytes. */
export interface MetadataPosition {
  block: number;
  offset: number;
}

/**
 * Reads metadata blocks (u16 header + payload) through a shared byte-bounded cache and follows
 * records across block boundaries. Every block must lie below `end` (bytes_used).
 */
export class MetadataReader {
  /**
   * Scratch space for fixed-size records (inode and directory headers, bodies, entries) read
   * from this table: each decoder uses one before it reads the next, so they are reused instead
   * of allocating a Buffer per record.
   */
  readonly header = new RecordScratch(16);
  readonly body = new RecordScratch(40);

  constructor(
    private readonly source: ByteSource,
    private readonly decompressor: Decompressor,
    private readonly cache: ByteLru<number, MetadataBlock>,
    private readonly end: number,
  ) {}

  block(position: number): MetadataBlock {
    const cached = this.cache.get(position);
    if (cached !== undefined) return cached;
    if (position + 2 > this.end) throw new CorruptImageError(`metadata block header at ${position} is past the end of the image`, position);
    const header = this.source.read(position, 2).readUInt16LE(0);
    const length = header & ~UNCOMPRESSED_BIT;
    if (length === 0 || length > METADATA_BLOCK_SIZE) {
      throw new CorruptImageError(`metadata block length ${length} is invalid`, position);
    }
    if (position + 2 + length > this.end) {
      throw new CorruptImageError(`metadata block of ${length} bytes runs past the end of the image`, position);
    }
    const raw = this.source.read(position + 2, length);
    let data: Buffer;
    if (header & UNCOMPRESSED_BIT) {
      // Copy: the source may hand out views of a reusable buffer.
      data = Buffer.from(raw);
    } else {
      try {
        data = this.decompressor.decompress(raw, METADATA_BLOCK_SIZE);
      } catch (err) {
        if (err instanceof DecompressError) throw new DecompressError(err.compressor, err.detail, position);
        throw err;
      }
    }
    const block = { data, next: position + 2 + length };
    this.cache.set(position, block, data.length + 64);
    return block;
  }

  /** Read `length` bytes starting at `pos`, continuing into following blocks as needed. */
  read(pos: MetadataPosition, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    this.readInto(pos, out);
    return out;
  }

  /**
   * Fill `out` from `pos` and advance `pos` past what was read. Records are packed across block
   * boundaries; an offset equal to a full block's length moves on to the next block.
   */
  readInto(pos: MetadataPosition, out: Buffer): void {
    let done = 0;
    let { block, offset } = pos;
    while (done < out.length) {
      const b = this.block(block);
      if (offset >= b.data.length) {
        block = this.following(block, b, offset);
        offset = 0;
        continue;
      }
      const n = Math.min(out.length - done, b.data.length - offset);
      // Inode and directory records are a few bytes: a loop beats Buffer.copy's native call there.
      if (n <= 64) {
        const data = b.data;
        for (let i = 0; i < n; i++) out[done + i] = data[offset + i]!;
      } else {
        b.data.copy(out, done, offset, offset + n);
      }
      done += n;
      offset += n;
    }
    pos.block = block;
    pos.offset = offset;
  }

  /**
   * Compares the `length` bytes at `pos` with `name` as Buffer.compare(bytes, name) would (by
   * sign), and advances `pos` past them. Directory lookups compare every name they pass: done in
   * place, no Buffer is made for names that do not match.
   */
  compareAt(pos: MetadataPosition, length: number, name: Buffer): number {
    let { block, offset } = pos;
    let b = this.block(block);
    let result = 0;
    let i = 0;
    for (; i < length && result === 0; i++) {
      if (offset >= b.data.length) {
        block = this.following(block, b, offset);
        offset = 0;
        b = this.block(block);
      }
      result = i < name.length ? b.data[offset]! - name[i]! : 1;
      offset++;
    }
    if (result === 0 && length < name.length) result = -1;
    // Skip what is left of the record after the first difference.
    let left = length - i;
    while (left > 0) {
      if (offset >= b.data.length) {
        block = this.following(block, b, offset);
        offset = 0;
        b = this.block(block);
      }
      const n = Math.min(left, b.data.length - offset);
      offset += n;
      left -= n;
    }
    pos.block = block;
    pos.offset = offset;
    return result;
  }

  /** The block after `b` (at `block`) for a record that goes on at `offset`; only a full block has one. */
  private following(block: number, b: MetadataBlock, offset: number): number {
    if (offset > b.data.length || b.data.length < METADATA_BLOCK_SIZE) {
      throw new CorruptImageError(`metadata offset ${offset} is past the end of its block (${b.data.length} bytes)`, block);
    }
    return b.next;
  }
}

/**
 * Reusable destinations for fixed-size records that are decoded into numbers at once (inode and
 * directory headers): read() allocates a Buffer per record, ~3 per entry of a directory walk.
 * One per call site that needs its bytes while another is read (see the users).
 */
export class RecordScratch {
  private readonly views: Buffer[] = [];

  constructor(private readonly max: number) {
    const buf = Buffer.alloc(max);
    for (let n = 0; n <= max; n++) this.views.push(buf.subarray(0, n));
  }

  /** `length` bytes from `pos` (advanced), valid until this scratch is used again. */
  read(meta: MetadataReader, pos: MetadataPosition, length: number): Buffer {
    if (length > this.max) return meta.read(pos, length);
    const out = this.views[length]!;
    meta.readInto(pos, out);
    return out;
  }
}

/** Split a 64-bit metadata reference ((block << 16) | offset) held in a JS number. */
export function splitRef(ref: number): { block: number; offset: number } {
  return { block: Math.floor(ref / 65536), offset: ref % 65536 };
}

export function makeRef(block: number, offset: number): number {
  return block * 65536 + offset;
}
