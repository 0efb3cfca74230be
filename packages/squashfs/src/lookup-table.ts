import type { ByteSource } from './byte-source.js';
import { CorruptImageError } from './errors.js';
import { METADATA_BLOCK_SIZE, type MetadataReader } from './metadata.js';

/**
 * The fixed-size-entry tables (id, fragment, export, xattr id): entries packed into metadata
 * blocks, located through an uncompressed list of u64 block positions.
 */
export class LookupTable {
  private readonly blocks: number[];

  constructor(
    private readonly meta: MetadataReader,
    source: ByteSource,
    readonly name: string,
    listStart: number,
    readonly count: number,
    readonly entrySize: number,
    end: number,
  ) {
    const nblocks = Math.ceil((count * entrySize) / METADATA_BLOCK_SIZE);
    if (listStart + nblocks * 8 > end) {
      throw new CorruptImageError(`${name} table location list (${nblocks} entries) runs past the end of the image`, listStart);
    }
    const list = nblocks > 0 ? source.read(listStart, nblocks * 8) : Buffer.alloc(0);
    this.blocks = [];
    for (let i = 0; i < nblocks; i++) {
      const pos = list.readBigUInt64LE(i * 8);
      if (pos >= BigInt(end)) throw new CorruptImageError(`${name} table block ${i} at ${pos} is outside the image`, listStart + i * 8);
      this.blocks.push(Number(pos));
    }
  }

  /** The raw bytes of entry `index`; an index past the table is corruption in whatever referenced it. */
  entry(index: number, referencedFrom?: number): Buffer {
    if (!Number.isInteger(index) || index < 0 || index >= this.count) {
      throw new CorruptImageError(`${this.name} index ${index} is out of range (table has ${this.count} entries)`, referencedFrom);
    }
    const byte = index * this.entrySize;
    const block = this.blocks[Math.floor(byte / METADATA_BLOCK_SIZE)]!;
    return this.meta.read({ block, offset: byte % METADATA_BLOCK_SIZE }, this.entrySize);
  }

  /** Position of the first metadata block (used to bound the tables laid out before it). */
  get firstBlock(): number | undefined {
    return this.blocks[0];
  }
}
