import type { BlockPool } from './block-pool.js';
import type { ByteSource } from './byte-source.js';
import type { ByteLru } from './cache.js';
import type { Decompressor } from './compression/decompressor.js';
import { CorruptImageError, DecompressError } from './errors.js';
import { readFragmentEntry, type FragmentEntry } from './fragment-table.js';
import { NO_FRAGMENT, type FileInode } from './inode.js';
import type { LookupTable } from './lookup-table.js';
import type { MetadataPosition, MetadataReader } from './metadata.js';

/** Block size words per chunk of the block list: one full metadata block of u32s. */
const CHUNK = 2048;
const UNCOMPRESSED = 0x1000000;
const LENGTH_MASK = 0xffffff;

/**
 * Where the block list chunks of one file are, and where each chunk's first data block starts on
 * disk. Built lazily, chunk by chunk, so a sparse terabyte file costs nothing until it is read
 * and random access needs no prefix sum over the whole list.
 */
interface BlockIndex {
  /** chunkList[k]: metadata position of the size word of block k*CHUNK. */
  chunkList: MetadataPosition[];
  /** chunkData[k]: absolute disk position of block k*CHUNK. */
  chunkData: number[];
}

export interface DataReaderContext {
  source: ByteSource;
  decompressor: Decompressor;
  meta: MetadataReader;
  blockSize: number;
  /** End of the squashfs bytes: every data block must end at or before it. */
  end: number;
  fragments: LookupTable | undefined;
  /** Decoded data and fragment blocks keyed by disk position (dedup'd files share entries). */
  blocks: ByteLru<number, Buffer>;
  /** Block list chunks and indexes, keyed by "ref" / "ref:chunk". */
  index: ByteLru<string, BlockIndex | Uint32Array>;
  /** Set when decoded blocks may be recycled (the cache gives evicted blocks back to it). */
  pool?: BlockPool;
}

export class FileDataReader {
  private readonly zeros: Buffer;
  /** Compressed bytes of the block being decoded, when the source can read into a buffer. */
  private readonly raw: Buffer | undefined;

  constructor(private readonly c: DataReaderContext) {
    this.zeros = Buffer.alloc(c.blockSize);
    // Compressed input never outlives decode(), so one buffer serves every block.
    this.raw = c.source.readInto !== undefined ? Buffer.allocUnsafeSlow(c.blockSize) : undefined;
  }
  /** Bytes held by the decoded-block and block-index caches. */
  cacheUse(): { data: number; index: number } {
    return { data: this.c.blocks.costUsed, index: this.c.index.costUsed };
  }


  /** Bytes [position, position+length) of a regular file, short only at end of file. */
  read(inode: FileInode, position: number, length: number): Buffer {
    const size = inode.fileSize;
    if (position >= size || length <= 0) return Buffer.alloc(0);
    const end = Math.min(size, position + length);
    const { blockSize } = this.c;
    const first = Math.floor(position / blockSize);
    const last = Math.floor((end - 1) / blockSize);
    // A read inside one block can hand out a view of the cached block: no copy.
    if (first === last) {
      const b = this.block(inode, first);
      const off = position - first * blockSize;
      return b.subarray(off, off + (end - position));
    }
    const out = Buffer.allocUnsafe(end - position);
    this.copyBlocks(inode, position, end, out);
    return out;
  }

  /** Bytes [position, position+length) of a regular file into dst; the count (short only at EOF). */
  readInto(inode: FileInode, position: number, length: number, dst: Buffer): number {
    const end = Math.min(inode.fileSize, position + length, position + dst.length);
    if (position >= end) return 0;
    this.copyBlocks(inode, position, end, dst);
    return end - position;
  }

  private copyBlocks(inode: FileInode, position: number, end: number, out: Buffer): void {
    const { blockSize } = this.c;
    const first = Math.floor(position / blockSize);
    const last = Math.floor((end - 1) / blockSize);
    for (let i = first; i <= last; i++) {
      const blockStart = i * blockSize;
      // A full-size data block this read takes whole is decoded straight into `out`, not through
      // the cache: nothing is likely to want it again soon (a FUSE reader's page cache keeps it),
      // and caching it would evict the fragment blocks that many small files share.
      if (i < inode.blockCount && blockStart >= position && blockStart + blockSize <= end && blockStart + blockSize <= inode.fileSize) {
        this.blockInto(inode, i, out.subarray(blockStart - position, blockStart - position + blockSize));
        continue;
      }
      const b = this.block(inode, i);
      const from = Math.max(position, blockStart) - blockStart;
      const to = Math.min(end, blockStart + b.length) - blockStart;
      b.copy(out, blockStart + from - position, from, to);
    }
  }

  /** Decoded bytes of block `i` of the file (the tail fragment counts as the last block). */
  block(inode: FileInode, i: number): Buffer {
    const { blockSize } = this.c;
    const expected = Math.min(blockSize, inode.fileSize - i * blockSize);
    if (i >= inode.blockCount) {
      if (inode.fragment === NO_FRAGMENT || i !== inode.blockCount) {
        throw new CorruptImageError(`block ${i} is past the end of the file`, undefined);
      }
      return this.fragmentTail(inode, expected);
    }
    const d = this.dataBlock(inode, i);
    if (d.length === 0) return this.zeros.subarray(0, d.expected);
    const data = this.decode(d.position, d.length, d.compressed, 'data block');
    this.checkDecoded(inode, i, d, data.length);
    return data;
  }

  /**
   * block() into `dst` (at least blockSize bytes), returning the length. A data block is decoded
   * straight into dst without passing through the cache: for one-pass readers (extraction's
   * helper thread) that would copy every block once more and evict what others still use.
   */
  blockInto(inode: FileInode, i: number, dst: Buffer): number {
    this.checkDestination(dst, 'blockInto');
    if (i >= inode.blockCount) return this.block(inode, i).copy(dst);
    const d = this.dataBlock(inode, i);
    if (d.length === 0) {
      dst.fill(0, 0, d.expected);
      return d.expected;
    }
    const n = this.decodeInto(d.position, d.length, d.compressed, 'data block', dst);
    this.checkDecoded(inode, i, d, n);
    return n;
  }

  /** The whole fragment block holding the tail of `inode`, decoded into `dst` (at least blockSize bytes); its length. */
  fragmentBlockInto(inode: FileInode, dst: Buffer): number {
    this.checkDestination(dst, 'fragmentBlockInto');
    if (inode.fragment === NO_FRAGMENT) throw new CorruptImageError(`inode ${inode.inodeNumber} has no fragment`, undefined);
    const f = this.fragmentEntry(inode);
    return this.decodeInto(f.start, f.length, f.compressed, 'fragment block', dst);
  }

  /** Where data block `i` (below blockCount) is stored, and how many bytes it must decode to. */
  private dataBlock(inode: FileInode, i: number): { position: number; length: number; compressed: boolean; expected: number } {
    const { word, position } = this.locate(inode, i);
    return { position, length: word & LENGTH_MASK, compressed: (word & UNCOMPRESSED) === 0, expected: Math.min(this.c.blockSize, inode.fileSize - i * this.c.blockSize) };
  }

  private checkDecoded(inode: FileInode, i: number, d: { position: number; expected: number }, decoded: number): void {
    if (decoded !== d.expected) {
      throw new CorruptImageError(`data block ${i} of inode ${inode.inodeNumber} decodes to ${decoded} bytes, expected ${d.expected}`, d.position);
    }
  }

  private checkDestination(dst: Buffer, what: string): void {
    if (dst.length < this.c.blockSize) throw new RangeError(`${what}: destination of ${dst.length} bytes is smaller than the block size ${this.c.blockSize}`);
  }

  /** The fragment table entry of `inode`'s tail. */
  private fragmentEntry(inode: FileInode): FragmentEntry {
    if (this.c.fragments === undefined) throw new CorruptImageError(`inode ${inode.inodeNumber} uses a fragment but the image has none`, undefined);
    return readFragmentEntry(this.c.fragments, inode.fragment);
  }

  /** A stored block must fit a block and lie inside the image. */
  private checkExtent(position: number, length: number, what: string): void {
    if (length > this.c.blockSize) throw new CorruptImageError(`${what} of ${length} bytes is larger than the block size`, position);
    if (position + length > this.c.end) throw new CorruptImageError(`${what} of ${length} bytes at ${position} runs past the end of the image`, position);
  }

  /** decode() into dst (from the cache when the block is there, else not through it). */
  private decodeInto(position: number, length: number, compressed: boolean, what: string, dst: Buffer): number {
    const { blockSize, source, decompressor } = this.c;
    const cached = this.c.blocks.get(position);
    if (cached !== undefined) return cached.copy(dst);
    if (decompressor.decompressInto === undefined || source.readInto === undefined || this.raw === undefined) {
      return this.decode(position, length, compressed, what).copy(dst);
    }
    this.checkExtent(position, length, what);
    if (!compressed) {
      source.readInto(position, length, dst.subarray(0, length));
      return length;
    }
    const raw = this.raw.subarray(0, length);
    source.readInto(position, length, raw);
    try {
      return decompressor.decompressInto(raw, dst.subarray(0, blockSize));
    } catch (err) {
      throw withPosition(err, position);
    }
  }

  private fragmentTail(inode: FileInode, tail: number): Buffer {
    const f = this.fragmentEntry(inode);
    const frag = this.decode(f.start, f.length, f.compressed, 'fragment block');
    if (inode.fragmentOffset + tail > frag.length) {
      throw new CorruptImageError(
        `tail of inode ${inode.inodeNumber} (${tail} bytes at ${inode.fragmentOffset}) is outside its fragment block (${frag.length} bytes)`,
        f.start,
      );
    }
    return frag.subarray(inode.fragmentOffset, inode.fragmentOffset + tail);
  }

  /** Read and decode one data or fragment block through the block cache. */
  private decode(position: number, length: number, compressed: boolean, what: string): Buffer {
    const cached = this.c.blocks.get(position);
    if (cached !== undefined) return cached;
    this.checkExtent(position, length, what);
    const { blockSize, source, decompressor, pool } = this.c;
    let data: Buffer;
    try {
      if (!compressed) {
        if (pool !== undefined && source.readInto !== undefined) {
          data = pool.take().subarray(0, length);
          source.readInto(position, length, data);
        } else {
          data = Buffer.from(source.read(position, length));
        }
      } else {
        let raw: Buffer;
        if (this.raw !== undefined) {
          raw = this.raw.subarray(0, length);
          source.readInto!(position, length, raw);
        } else {
          raw = source.read(position, length);
        }
        if (pool !== undefined && decompressor.decompressInto !== undefined) {
          const slot = pool.take();
          try {
            data = slot.subarray(0, decompressor.decompressInto(raw, slot));
          } catch (err) {
            pool.give(slot);
            throw err;
          }
        } else {
          data = decompressor.decompress(raw, blockSize);
        }
      }
    } catch (err) {
      throw withPosition(err, position);
    }
    this.c.blocks.set(position, data, data.length + 64);
    return data;
  }

  /**
   * The first block at or after `from` (below blockCount) that is a hole (`hole` true: its stored
   * length is 0, the writer found it all zeros) or holds data (`hole` false); blockCount when
   * there is none. Reads only the block list, never data.
   */
  scanBlocks(inode: FileInode, from: number, hole: boolean): number {
    let i = Math.max(0, from);
    while (i < inode.blockCount) {
      const k = Math.floor(i / CHUNK);
      const sizes = this.chunk(inode, this.blockIndex(inode, k), k);
      for (let j = i - k * CHUNK; j < sizes.length; j++) {
        if (((sizes[j]! & LENGTH_MASK) === 0) === hole) return k * CHUNK + j;
      }
      i = (k + 1) * CHUNK;
    }
    return inode.blockCount;
  }

  /** Size word and disk position of block `i`. */
  private locate(inode: FileInode, i: number): { word: number; position: number } {
    const k = Math.floor(i / CHUNK);
    const idx = this.blockIndex(inode, k);
    const sizes = this.chunk(inode, idx, k);
    let position = idx.chunkData[k]!;
    const within = i - k * CHUNK;
    for (let j = 0; j < within; j++) position += sizes[j]! & LENGTH_MASK;
    return { word: sizes[within]!, position };
  }

  private blockIndex(inode: FileInode, upTo: number): BlockIndex {
    const key = String(inode.ref);
    let idx = this.c.index.get(key) as BlockIndex | undefined;
    if (idx === undefined) {
      idx = { chunkList: [{ ...inode.blockListPos }], chunkData: [inode.startBlock] };
    }
    while (idx.chunkList.length <= upTo) {
      const k = idx.chunkList.length - 1;
      const pos = { ...idx.chunkList[k]! };
      const sizes = this.readChunk(inode, pos, k);
      let data = idx.chunkData[k]!;
      for (const w of sizes) data += w & LENGTH_MASK;
      idx.chunkList.push(pos);
      idx.chunkData.push(data);
    }
    this.c.index.set(key, idx, 64 + idx.chunkList.length * 40);
    return idx;
  }

  private chunk(inode: FileInode, idx: BlockIndex, k: number): Uint32Array {
    const key = `${inode.ref}:${k}`;
    const hit = this.c.index.get(key) as Uint32Array | undefined;
    if (hit !== undefined) return hit;
    return this.readChunk(inode, { ...idx.chunkList[k]! }, k);
  }

  /** Read chunk k's size words, advancing `pos` past them, and cache them. */
  private readChunk(inode: FileInode, pos: MetadataPosition, k: number): Uint32Array {
    const count = Math.min(CHUNK, inode.blockCount - k * CHUNK);
    const at = pos.block;
    const raw = this.c.meta.read(pos, count * 4);
    const sizes = new Uint32Array(count);
    for (let j = 0; j < count; j++) {
      const w = raw.readUInt32LE(j * 4);
      if ((w & ~(LENGTH_MASK | UNCOMPRESSED)) !== 0 || (w & LENGTH_MASK) > this.c.blockSize) {
        throw new CorruptImageError(`block size word 0x${w.toString(16)} of inode ${inode.inodeNumber} is invalid`, at);
      }
      sizes[j] = w;
    }
    this.c.index.set(`${inode.ref}:${k}`, sizes, 64 + count * 4);
    return sizes;
  }
}

/** A decoder's error names the image position of the block it failed on. */
function withPosition(err: unknown, position: number): unknown {
  return err instanceof DecompressError ? new DecompressError(err.compressor, err.detail, position) : err;
}
