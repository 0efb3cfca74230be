import type { ByteSource } from './byte-source.js';
import { CorruptImageError, UnsupportedImageError } from './errors.js';
import { DataLayout, type ErofsInode } from './inode.js';
import { COMPRESSION_ALGORITHMS, FeatureIncompat, type CompressionAlgorithm, type Superblock } from './superblock.js';

/** h_advise bits of z_erofs_map_header. */
const Advise = {
  COMPACTED_2B: 0x1,
  BIG_PCLUSTER_1: 0x2,
  BIG_PCLUSTER_2: 0x4,
  INLINE_PCLUSTER: 0x8,
  INTERLACED_PCLUSTER: 0x10,
  FRAGMENT_PCLUSTER: 0x20,
} as const;

/** Logical cluster types (2 bits in either index format). */
const LclusterType = { PLAIN: 0, HEAD1: 1, NONHEAD: 2, HEAD2: 3 } as const;

/** delta[0] of the first non-head lcluster carries the pcluster's block count when this bit is set. */
const D0_CBLKCNT = 1 << 11;
const MAP_HEADER_SIZE = 8;
const FULL_INDEX_SIZE = 8;
/** The largest physical cluster the kernel accepts (Z_EROFS_PCLUSTER_MAX_SIZE). */
const MAX_PCLUSTER_BYTES = 1 << 20;
/** Cap on one extent's decoded size, so a hostile index cannot make us allocate without bound. */
export const MAX_EXTENT_BYTES = 16 << 20;

/** One compressed (or stored) extent of a file. */
export interface ZExtent {
  /** Logical start and length in the file. */
  la: number;
  llen: number;
  /** Where the physical cluster is in the image, and its size. */
  pa: number;
  plen: number;
  /** undefined: stored uncompressed (a plain cluster). */
  algorithm: CompressionAlgorithm | undefined;
  /** Plain cluster whose bytes are rotated to their in-block position. */
  interlaced: boolean;
  /** The tail cluster stored inline after the indexes (ztailpacking). */
  inline: boolean;
  /** The extent's bytes are in the packed inode from this offset on (fragments); pa/plen unused. */
  fragmentOff: number | undefined;
  /** The cluster decodes to more than the extent, which is its first llen bytes (dedupe). */
  partialRef: boolean;
}

/** What one index entry says (z_erofs_maprecorder's fields). */
interface Lcluster {
  type: number;
  clusterofs: number;
  pblk: number;
  delta0: number;
  /** Block count of a big pcluster, from a CBLKCNT non-head entry (0: not given here). */
  compressedBlocks: number;
  /** A head whose cluster is only partly this extent's (legacy indexes, dedupe). */
  partialRef: boolean;
  /** Where the index data following this entry's pack begins (ztailpacking data follows the last). */
  nextPackOff: number;
}

function decodeBits(lobits: number, pack: Buffer, bitPos: number): { lo: number; type: number } {
  const byte = bitPos >>> 3;
  // Little-endian u32 at byte (packs carry a 4-byte block address at their end, so byte+3 is inside).
  const v = (pack[byte]! | (pack[byte + 1]! << 8) | (pack[byte + 2]! << 16) | (pack[byte + 3]! << 24)) >>> (bitPos & 7);
  return { lo: v & ((1 << lobits) - 1), type: (v >>> lobits) & 3 };
}

/**
 * The logical→physical map of one compressed inode, from its map header and index array:
 * the legacy format (8 bytes per logical cluster) or the compacted one (packs of 2 entries in
 * 8 bytes or 16 entries in 32 bytes, bit-packed, with one block address per pack).
 */
export class ZMap {
  readonly lclusterBits: number;
  private readonly advise: number;
  private readonly algorithms: [number, number];
  private readonly totalIdx: number;
  private readonly headerPos: number;
  private readonly idataSize: number;
  /** ztailpacking: the head lcluster of the inline tail extent, and where its data is. */
  private tailHeadLcn = -1;
  private idataOff = 0;
  /** fragments: the whole file, or its tail extent, is in the packed inode from this offset. */
  private wholeFragment = false;
  private fragmentOff: number | undefined;
  /** The metadata block the last index entry came from: a file's indexes are read block by block. */
  private indexBlock: { start: number; bytes: Buffer } | undefined;

  constructor(
    private readonly source: ByteSource,
    private readonly sb: Superblock,
    private readonly inode: ErofsInode,
  ) {
    this.headerPos = Math.ceil(inode.dataPos / 8) * 8;
    const h = source.read(this.headerPos, MAP_HEADER_SIZE);
    this.idataSize = h.readUInt16LE(2);
    this.advise = h.readUInt16LE(4);
    this.algorithms = [h[6]! & 0xf, h[6]! >> 4];
    const clusterBits = h[7]!;
    this.lclusterBits = sb.blockSizeBits + (clusterBits & 7);
    if (clusterBits & 0x80) {
      // The whole file is a fragment: the header is its 63-bit offset in the packed inode.
      this.requireFragments();
      this.wholeFragment = true;
      this.fragmentOff = Number(h.readBigUInt64LE(0) ^ (1n << 63n));
      this.totalIdx = 0;
      return;
    }
    if (this.advise & ~0x3f) throw new UnsupportedImageError(`inode ${inode.nid} has unknown compression advise bits 0x${this.advise.toString(16)}`);
    if (this.advise & Advise.FRAGMENT_PCLUSTER) {
      this.requireFragments();
      if (this.advise & Advise.INLINE_PCLUSTER) throw new CorruptImageError(`inode ${inode.nid} has both an inline and a fragment tail`, this.headerPos + 4);
    }
    if (inode.layout === DataLayout.COMPRESSED_COMPACT) {
      if (this.lclusterBits > 14) throw new CorruptImageError(`inode ${inode.nid}: compacted indexes with 2^${this.lclusterBits}-byte logical clusters`, this.headerPos + 7);
      if (!(this.advise & Advise.BIG_PCLUSTER_1) !== !(this.advise & Advise.BIG_PCLUSTER_2)) {
        throw new CorruptImageError(`inode ${inode.nid}: big pcluster flags of compacted indexes disagree`, this.headerPos + 4);
      }
    }
    if (this.advise & (Advise.BIG_PCLUSTER_1 | Advise.BIG_PCLUSTER_2) && !(sb.featureIncompat & FeatureIncompat.COMPR_CFGS)) {
      throw new CorruptImageError(`inode ${inode.nid} uses big pclusters, which the superblock does not enable`, this.headerPos + 4);
    }
    this.totalIdx = Math.ceil(inode.size / 2 ** this.lclusterBits);
    if (this.advise & Advise.INLINE_PCLUSTER) {
      if (!(sb.featureIncompat & FeatureIncompat.ZTAILPACKING)) throw new CorruptImageError(`inode ${inode.nid} has an inline pcluster, which the superblock does not enable`, this.headerPos + 4);
      if (inode.size > 0) {
        const lastLcn = this.totalIdx - 1;
        this.idataOff = this.load(lastLcn).nextPackOff;
        this.tailHeadLcn = this.findHead(inode.size - 1).headLcn;
        if (this.idataSize === 0 || (this.idataOff % sb.blockSize) + this.idataSize > sb.blockSize) {
          throw new CorruptImageError(`inline tail of inode ${inode.nid} (${this.idataSize} bytes at ${this.idataOff}) is empty or crosses a block boundary`, this.idataOff);
        }
      }
    }
    if (this.advise & Advise.FRAGMENT_PCLUSTER && inode.size > 0) {
      const tail = this.findHead(inode.size - 1);
      this.tailHeadLcn = tail.headLcn;
      // Legacy indexes keep the offset's high 32 bits in the tail head's block address.
      this.fragmentOff = h.readUInt32LE(0) + (inode.layout === DataLayout.COMPRESSED_FULL ? tail.head.pblk * 2 ** 32 : 0);
    }
  }

  private requireFragments(): void {
    if (!(this.sb.featureIncompat & FeatureIncompat.FRAGMENTS)) {
      throw new CorruptImageError(`inode ${this.inode.nid} keeps data in the packed inode, which the superblock does not enable`, this.headerPos);
    }
  }

  /**
   * `length` bytes of index data at `pos` (entries and packs never cross a block boundary),
   * from the block cached by the previous call when it holds them.
   */
  private indexBytes(pos: number, length: number): Buffer {
    const b = this.indexBlock;
    if (b !== undefined && pos >= b.start && pos + length <= b.start + b.bytes.length) return b.bytes.subarray(pos - b.start, pos - b.start + length);
    const bs = this.sb.blockSize;
    const start = Math.floor(pos / bs) * bs;
    const end = Math.min(start + bs, this.source.size);
    if (pos + length > end) return this.source.read(pos, length);
    this.indexBlock = { start, bytes: this.source.read(start, end - start) };
    return this.indexBlock.bytes.subarray(pos - start, pos - start + length);
  }

  private corrupt(what: string, at?: number): CorruptImageError {
    return new CorruptImageError(`compressed inode ${this.inode.nid}: ${what}`, at ?? this.headerPos);
  }

  /** One logical cluster's index entry. */
  private load(lcn: number): Lcluster {
    if (lcn < 0 || lcn >= this.totalIdx) throw this.corrupt(`logical cluster ${lcn} is outside [0, ${this.totalIdx})`);
    return this.inode.layout === DataLayout.COMPRESSED_FULL ? this.loadFull(lcn) : this.loadCompact(lcn);
  }

  private loadFull(lcn: number): Lcluster {
    // Legacy indexes follow the map header and 8 reserved bytes.
    const pos = this.headerPos + MAP_HEADER_SIZE + 8 + lcn * FULL_INDEX_SIZE;
    const e = this.indexBytes(pos, FULL_INDEX_SIZE);
    const type = e.readUInt16LE(0) & 3;
    const advise = e.readUInt16LE(0);
    const out: Lcluster = { type, clusterofs: 0, pblk: 0, delta0: 0, compressedBlocks: 0, partialRef: (advise & 0x8000) !== 0, nextPackOff: pos + FULL_INDEX_SIZE };
    if (type === LclusterType.NONHEAD) {
      out.clusterofs = 2 ** this.lclusterBits;
      out.delta0 = e.readUInt16LE(4);
      if (out.delta0 & D0_CBLKCNT) {
        if (!(this.advise & (Advise.BIG_PCLUSTER_1 | Advise.BIG_PCLUSTER_2))) throw this.corrupt('block count in an index without big pclusters', pos);
        out.compressedBlocks = out.delta0 & ~D0_CBLKCNT;
        out.delta0 = 1;
      }
    } else {
      out.clusterofs = e.readUInt16LE(2);
      if (out.clusterofs >= 2 ** this.lclusterBits) throw this.corrupt(`cluster offset ${out.clusterofs} is past its logical cluster`, pos + 2);
      out.pblk = e.readUInt32LE(4);
    }
    return out;
  }

  private loadCompact(lcnIn: number): Lcluster {
    let lcn = lcnIn;
    const ebase = this.headerPos + MAP_HEADER_SIZE;
    // 4-byte entries up to the first 32-byte boundary, then (with COMPACTED_2B) whole packs of
    // sixteen 2-byte entries, then 4-byte entries again.
    const initial4b = ((32 - (ebase % 32)) / 4) & 7;
    const compacted2b = this.advise & Advise.COMPACTED_2B && initial4b < this.totalIdx ? Math.floor((this.totalIdx - initial4b) / 16) * 16 : 0;
    let pos = ebase;
    let shift: number;
    if (lcn < initial4b) {
      shift = 2;
    } else {
      pos += initial4b * 4;
      lcn -= initial4b;
      if (lcn < compacted2b) {
        shift = 1;
      } else {
        pos += compacted2b * 2;
        lcn -= compacted2b;
        shift = 2;
      }
    }
    pos += lcn << shift;
    return this.unpack(shift, pos);
  }

  private unpack(shift: number, pos: number): Lcluster {
    const bits = this.lclusterBits;
    let vcnt: number;
    if (shift === 2 && bits <= 14) vcnt = 2;
    else if (shift === 1 && bits === 12) vcnt = 16;
    else throw new UnsupportedImageError(`compressed inode ${this.inode.nid}: 2-byte compacted indexes with 2^${bits}-byte logical clusters`);
    const packSize = vcnt << shift;
    const base = Math.floor(pos / packSize) * packSize;
    const pack = this.indexBytes(base, packSize);
    const bigPcluster = (this.advise & Advise.BIG_PCLUSTER_1) !== 0;
    const lobits = Math.max(bits, 12);
    const encodebits = ((packSize - 4) * 8) / vcnt;
    let i = (pos - base) >> shift;
    const out: Lcluster = { type: 0, clusterofs: 0, pblk: 0, delta0: 0, compressedBlocks: 0, partialRef: false, nextPackOff: base + packSize };
    let { lo, type } = decodeBits(lobits, pack, encodebits * i);
    out.type = type;
    if (type === LclusterType.NONHEAD) {
      out.clusterofs = 2 ** bits;
      if (lo & D0_CBLKCNT) {
        if (!bigPcluster) throw this.corrupt('block count in an index without big pclusters', base);
        out.compressedBlocks = lo & ~D0_CBLKCNT;
        out.delta0 = 1;
        return out;
      }
      if (i + 1 !== vcnt) {
        out.delta0 = lo;
        return out;
      }
      // The last entry of a pack stores its lookahead distance; its lookback comes from the one before.
      const prev = decodeBits(lobits, pack, encodebits * (i - 1));
      let d = prev.lo;
      if (prev.type !== LclusterType.NONHEAD) d = 0;
      else if (d & D0_CBLKCNT) d = 1;
      out.delta0 = d + 1;
      return out;
    }
    out.clusterofs = lo;
    // The pack stores one block address; a head's block is it plus the blocks of the heads
    // before it in the pack.
    let nblk: number;
    if (!bigPcluster) {
      nblk = 1;
      while (i > 0) {
        --i;
        ({ lo, type } = decodeBits(lobits, pack, encodebits * i));
        if (type === LclusterType.NONHEAD) i -= lo;
        if (i >= 0) ++nblk;
      }
    } else {
      nblk = 0;
      while (i > 0) {
        --i;
        ({ lo, type } = decodeBits(lobits, pack, encodebits * i));
        if (type === LclusterType.NONHEAD) {
          if (lo & D0_CBLKCNT) {
            --i;
            nblk += lo & ~D0_CBLKCNT;
            continue;
          }
          if (lo <= 1) throw this.corrupt('big pcluster index with a plain lookback of 1', base);
          i -= lo - 2;
          continue;
        }
        ++nblk;
      }
    }
    out.pblk = pack.readUInt32LE(packSize - 4) + nblk;
    return out;
  }

  /** The head lcluster of the extent holding `offset`, and where that extent starts. */
  /**
   * The head lcluster of the extent holding `offset`, where that extent starts, and where the
   * kernel takes the mapping of `offset` to end (the next head's start when it is in the same
   * logical cluster, else that cluster's end).
   */
  private findHead(offset: number): { head: Lcluster; headLcn: number; la: number; kernelEnd: number } {
    const bits = this.lclusterBits;
    let lcn = Math.floor(offset / 2 ** bits);
    const endoff = offset - lcn * 2 ** bits;
    let m = this.load(lcn);
    let distance: number;
    let kernelEnd = (lcn + 1) * 2 ** bits;
    if (m.type !== LclusterType.NONHEAD) {
      if (endoff >= m.clusterofs) return { head: m, headLcn: lcn, la: lcn * 2 ** bits + m.clusterofs, kernelEnd };
      // The bytes before this head's start belong to the previous extent.
      if (lcn === 0) throw this.corrupt('first logical cluster starts after offset 0');
      kernelEnd = lcn * 2 ** bits + m.clusterofs;
      distance = 1;
    } else {
      distance = m.delta0;
    }
    for (let steps = 0; ; steps++) {
      if (distance <= 0 || distance > lcn || steps > this.totalIdx) throw this.corrupt(`bad lookback distance ${distance} at logical cluster ${lcn}`);
      lcn -= distance;
      m = this.load(lcn);
      if (m.type !== LclusterType.NONHEAD) return { head: m, headLcn: lcn, la: lcn * 2 ** bits + m.clusterofs, kernelEnd };
      distance = m.delta0;
    }
  }

  /** The extent holding file offset `offset` (inside the file). */
  map(offset: number): ZExtent {
    const bits = this.lclusterBits;
    const bs = this.sb.blockSize;
    const none = { pa: 0, plen: 0, algorithm: undefined, interlaced: false, inline: false, partialRef: false };
    if (this.wholeFragment) return { la: 0, llen: this.inode.size, ...none, fragmentOff: this.fragmentOff };
    const { head, headLcn, la, kernelEnd } = this.findHead(offset);
    if (this.fragmentOff !== undefined && headLcn === this.tailHeadLcn) {
      if (offset < la) throw this.corrupt(`fragment tail at ${la} starts after offset ${offset}`);
      return { la, llen: this.inode.size - la, ...none, fragmentOff: this.fragmentOff };
    }
    // The extent runs to the start of the next head (or the end of the file).
    let end = this.inode.size;
    for (let lcn = headLcn + 1; lcn < this.totalIdx; lcn++) {
      const m = this.load(lcn);
      if (m.type !== LclusterType.NONHEAD) {
        end = Math.min(end, lcn * 2 ** bits + m.clusterofs);
        break;
      }
      if (lcn * 2 ** bits - la > MAX_EXTENT_BYTES) break;
    }
    const llen = end - la;
    if (llen <= 0 || offset >= end) throw this.corrupt(`extent at ${la} has length ${llen}`);
    if (llen > MAX_EXTENT_BYTES) throw this.corrupt(`extent at ${la} decodes to more than ${MAX_EXTENT_BYTES} bytes`);
    const algorithm =
      head.type === LclusterType.PLAIN ? undefined : this.algorithmOf(head.type === LclusterType.HEAD1 ? this.algorithms[0] : this.algorithms[1]);
    let pa: number;
    let plen: number;
    const inline = headLcn === this.tailHeadLcn;
    if (inline) {
      pa = this.idataOff;
      plen = this.idataSize;
    } else {
      pa = head.pblk * bs;
      plen = this.compressedBlocks(head, headLcn) * bs;
    }
    if (plen > MAX_PCLUSTER_BYTES || !Number.isSafeInteger(pa + plen) || pa + plen > this.source.size) {
      throw this.corrupt(`physical cluster [${pa}, ${pa + plen}) of the extent at ${la} lies outside the image or is too big`);
    }
    if (algorithm === undefined && llen > plen) throw this.corrupt(`stored extent at ${la} is ${llen} bytes in a ${plen}-byte cluster`);
    // The kernel maps a stored extent up to kernelEnd and refuses it when that passes the
    // cluster's size (a layout mkfs.erofs never writes): such images read as EIO on both.
    if (algorithm === undefined && !inline && kernelEnd - la > plen) {
      throw this.corrupt(`stored extent at ${la} is mapped to ${kernelEnd}, past its ${plen}-byte cluster`);
    }
    return {
      la,
      llen,
      pa,
      plen,
      algorithm,
      interlaced: algorithm === undefined && (this.advise & Advise.INTERLACED_PCLUSTER) !== 0,
      inline,
      fragmentOff: undefined,
      partialRef: head.partialRef,
    };
  }

  private algorithmOf(n: number): CompressionAlgorithm {
    const name = COMPRESSION_ALGORITHMS[n];
    if (name === undefined) throw new UnsupportedImageError(`compressed inode ${this.inode.nid} uses unknown algorithm ${n}`);
    if (!(this.sb.availableComprAlgs & (1 << n))) throw this.corrupt(`uses ${name}, which the superblock does not list`);
    return name;
  }

  /** Physical cluster size in blocks: 1, or what the first non-head entry after the head says. */
  private compressedBlocks(head: Lcluster, headLcn: number): number {
    // Plain clusters follow HEAD2's flag, as in the kernel.
    const big = head.type === LclusterType.HEAD1 ? this.advise & Advise.BIG_PCLUSTER_1 : this.advise & Advise.BIG_PCLUSTER_2;
    if (!big || headLcn + 1 >= this.totalIdx) return 1;
    const next = this.load(headLcn + 1);
    if (next.type !== LclusterType.NONHEAD) return 1;
    if (next.delta0 !== 1 || next.compressedBlocks === 0) throw this.corrupt(`big pcluster at logical cluster ${headLcn} has no block count`);
    return next.compressedBlocks;
  }
}
