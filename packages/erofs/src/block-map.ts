import type { ByteSource } from './byte-source.js';
import { CorruptImageError, UnsupportedImageError } from './errors.js';
import { DataLayout, type ErofsInode } from './inode.js';
import type { Superblock } from './superblock.js';

/** A run of a file's bytes: where it lies in the image, or a hole (reads as zeros). */
export interface Mapping {
  /** Logical start in the file. */
  la: number;
  /** Length in the file. */
  llen: number;
  /** Byte offset in the image; undefined for a hole. */
  pa: number | undefined;
}

/** Block address meaning "no block": a hole in a chunk-based file. */
export const NULL_ADDR = 0xffffffff;

/** Chunk format bits (i_u low 16 bits of a chunk-based inode). */
const CHUNK_BLKBITS_MASK = 0x1f;
const CHUNK_INDEXES = 0x20;
const CHUNK_INDEX_SIZE = 8;
const BLOCK_MAP_ENTRY_SIZE = 4;

/**
 * Map `offset` (inside the file) of an uncompressed inode: flat (one run from i_u's start block),
 * flat with the last partial block stored inline after the inode, or chunk-based (a table of
 * block addresses or chunk indexes after the inode, one per chunk; NULL_ADDR is a hole).
 */
export function mapUncompressed(source: ByteSource, sb: Superblock, inode: ErofsInode, offset: number): Mapping {
  const bs = sb.blockSize;
  switch (inode.layout) {
    case DataLayout.FLAT_PLAIN:
    case DataLayout.FLAT_INLINE: {
      const nblocks = Math.ceil(inode.size / bs);
      const tailPacked = inode.layout === DataLayout.FLAT_INLINE;
      const lastBlock = nblocks - (tailPacked ? 1 : 0);
      if (offset < lastBlock * bs) {
        return checked(source, inode, { la: 0, llen: lastBlock * bs, pa: inode.u * bs }, offset);
      }
      // The tail: right after the inode and its xattrs, and it must not cross a block boundary.
      const tailLen = inode.size - lastBlock * bs;
      const inBlock = inode.dataPos % bs;
      if (inBlock + tailLen > bs) {
        throw new CorruptImageError(`inline data of inode ${inode.nid} (${tailLen} bytes at ${inode.dataPos}) crosses a block boundary`, inode.dataPos);
      }
      return checked(source, inode, { la: lastBlock * bs, llen: tailLen, pa: inode.dataPos }, offset);
    }
    case DataLayout.CHUNK_BASED: {
      const format = inode.u & 0xffff;
      if (format & ~(CHUNK_BLKBITS_MASK | CHUNK_INDEXES)) throw new UnsupportedImageError(`inode ${inode.nid} has unknown chunk format 0x${format.toString(16)}`);
      const chunkBits = sb.blockSizeBits + (format & CHUNK_BLKBITS_MASK);
      if (chunkBits > 42) throw new CorruptImageError(`inode ${inode.nid} has chunks of 2^${chunkBits} bytes`, inode.pos + 16);
      const chunkSize = 2 ** chunkBits;
      const chunk = Math.floor(offset / chunkSize);
      const la = chunk * chunkSize;
      const llen = Math.min(chunkSize, inode.size - la);
      let blkaddr: number;
      if (format & CHUNK_INDEXES) {
        const at = Math.ceil(inode.dataPos / CHUNK_INDEX_SIZE) * CHUNK_INDEX_SIZE + chunk * CHUNK_INDEX_SIZE;
        const e = source.read(at, CHUNK_INDEX_SIZE);
        // startblk_hi (u16) is only meaningful with 48-bit block addresses (refused at mount).
        const deviceId = e.readUInt16LE(2);
        blkaddr = e.readUInt32LE(4);
        if (blkaddr !== NULL_ADDR && deviceId !== 0) throw new CorruptImageError(`chunk ${chunk} of inode ${inode.nid} is on device ${deviceId}, but the image has none`, at + 2);
      } else {
        blkaddr = source.read(inode.dataPos + chunk * BLOCK_MAP_ENTRY_SIZE, BLOCK_MAP_ENTRY_SIZE).readUInt32LE(0);
      }
      if (blkaddr === NULL_ADDR) return { la, llen, pa: undefined };
      return checked(source, inode, { la, llen, pa: blkaddr * bs }, offset);
    }
    default:
      throw new Error(`mapUncompressed called for layout ${inode.layout}`);
  }
}

/** Refuse a run that lies (partly) outside the image before any read is attempted. */
function checked(source: ByteSource, inode: ErofsInode, m: Mapping, offset: number): Mapping {
  if (m.pa !== undefined && (!Number.isSafeInteger(m.pa + m.llen) || m.pa + m.llen > source.size)) {
    throw new CorruptImageError(`data of inode ${inode.nid} at file offset ${offset} maps to [${m.pa}, ${m.pa + m.llen}), outside the image`, inode.pos);
  }
  return m;
}
