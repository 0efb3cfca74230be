import type { ByteSource } from './byte-source.js';
import { CorruptImageError } from './errors.js';
import { LookupTable } from './lookup-table.js';
import { splitRef, type MetadataReader } from './metadata.js';

/** One extended attribute: full name including its prefix ("user.foo"), raw value. */
export interface Xattr {
  name: Buffer;
  value: Buffer;
}

/** xattr id table entry (16 bytes): where an inode's pair list is and how big it is. */
interface XattrIdEntry {
  ref: number;
  count: number;
  size: number;
}

const PREFIXES = [Buffer.from('user.'), Buffer.from('trusted.'), Buffer.from('security.')];
const OUT_OF_LINE = 0x0100;
/** Linux XATTR_SIZE_MAX: no real value is larger. */
const MAX_VALUE = 65536;
const MAX_NAME = 255;

/** The xattr id table plus the key/value area it points into. */
export class XattrTable {
  private readonly ids: LookupTable;
  private readonly kvStart: number;

  constructor(
    private readonly meta: MetadataReader,
    source: ByteSource,
    tableStart: number,
    end: number,
  ) {
    if (tableStart + 16 > end) throw new CorruptImageError('xattr id table header runs past the end of the image', tableStart);
    const h = source.read(tableStart, 16);
    const kv = h.readBigUInt64LE(0);
    if (kv >= BigInt(end)) throw new CorruptImageError(`xattr key/value area at ${kv} is outside the image`, tableStart);
    this.kvStart = Number(kv);
    const count = h.readUInt32LE(8);
    this.ids = new LookupTable(meta, source, 'xattr id', tableStart + 16, count, 16, end);
  }

  private entry(index: number, from: number | undefined): XattrIdEntry {
    const b = this.ids.entry(index, from);
    const ref = b.readBigUInt64LE(0);
    if (ref > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptImageError(`xattr reference ${ref} is out of range`, from);
    return { ref: Number(ref), count: b.readUInt32LE(8), size: b.readUInt32LE(12) };
  }

  /** Stored size in bytes of the pair list of xattr index `index` (what the kernel counts in st_blocks). */
  listSize(index: number, from?: number): number {
    return this.entry(index, from).size;
  }

  /** All xattrs of the inode whose xattr index is `index`, in stored order. */
  read(index: number, from?: number): Xattr[] {
    const e = this.entry(index, from);
    // The stated size is what listxattr+getxattr would return (full name, NUL, value: mksquashfs
    // writes 8 for a lone "user.a" = "1"), so each pair takes at least "user." + 1 + NUL = 7.
    if (e.count > e.size / 7) throw new CorruptImageError(`xattr count ${e.count} does not fit in ${e.size} bytes`, from);
    const { block, offset } = splitRef(e.ref);
    const pos = { block: this.kvStart + block, offset };
    const out: Xattr[] = [];
    for (let i = 0; i < e.count; i++) {
      const at = pos.block;
      const key = this.meta.read(pos, 4);
      const type = key.readUInt16LE(0);
      const prefix = PREFIXES[type & 0xff];
      if (prefix === undefined || (type & ~(OUT_OF_LINE | 0xff)) !== 0) {
        throw new CorruptImageError(`xattr type 0x${type.toString(16)} is unknown`, at);
      }
      const nameSize = key.readUInt16LE(2);
      if (nameSize === 0 || nameSize > MAX_NAME) throw new CorruptImageError(`xattr name length ${nameSize} is invalid`, at);
      const name = Buffer.concat([prefix, this.meta.read(pos, nameSize)]);
      let vsize = this.meta.read(pos, 4).readUInt32LE(0);
      let value: Buffer;
      if (type & OUT_OF_LINE) {
        if (vsize !== 8) throw new CorruptImageError(`out-of-line xattr reference has size ${vsize}, not 8`, at);
        const ref = this.meta.read(pos, 8).readBigUInt64LE(0);
        if (ref > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptImageError(`xattr value reference ${ref} is out of range`, at);
        const r = splitRef(Number(ref));
        const vpos = { block: this.kvStart + r.block, offset: r.offset };
        vsize = this.meta.read(vpos, 4).readUInt32LE(0);
        if (vsize > MAX_VALUE) throw new CorruptImageError(`xattr value size ${vsize} is over ${MAX_VALUE}`, at);
        value = this.meta.read(vpos, vsize);
      } else {
        if (vsize > MAX_VALUE) throw new CorruptImageError(`xattr value size ${vsize} is over ${MAX_VALUE}`, at);
        value = this.meta.read(pos, vsize);
      }
      out.push({ name, value });
    }
    return out;
  }
}
