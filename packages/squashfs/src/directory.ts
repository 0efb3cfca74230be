import { CorruptImageError } from './errors.js';
import { WIDE } from './wide.js';
import { kindOfType, type DirInode, type InodeKind } from './inode.js';
import { makeRef, type MetadataPosition, type MetadataReader } from './metadata.js';

// Run headers and entry records are read into the table reader's scratch and decoded at once.

/** One entry of a directory listing. */
export interface DirEntry {
  /** Raw name bytes (squashfs names are byte strings, not necessarily UTF-8). */
  name: Buffer;
  /** Inode reference, relative to inode_table_start. */
  ref: number;
  /** Basic inode type 1..7 (extended inodes are listed with their basic type). */
  type: number;
  /** The same type as a kind ("dir", "file", ...): a DirEntry is also @atomfs/tree's TreeEntry. */
  readonly kind: InodeKind;
  inodeNumber: number;
}

/** 12-byte run header: count-1, inode block, base inode number. */
interface DirHeader {
  count: number;
  startBlock: number;
  inodeNumber: number;
}

/** The fixed part of an entry, decoded; its name follows at the scan position. */
interface EntryRecord {
  header: DirHeader;
  nameSize: number;
  type: number;
  /** Offset of the inode in its metadata block. */
  offset: number;
  /** Inode number relative to the run's base. */
  inodeDelta: number;
}

/** One directory index record of an extended directory inode. */
interface DirIndexEntry {
  /** Byte offset of a run header from the start of the listing. */
  index: number;
  /** Directory-table-relative block holding that header. */
  startBlock: number;
  name: Buffer;
}

const MAX_RUN = 256;
const MAX_NAME = 256;

export class DirectoryReader {
  constructor(
    private readonly meta: MetadataReader,
    private readonly tableStart: number,
  ) {}

  /** Every entry, in on-disk (sorted) order. */
  list(dir: DirInode): DirEntry[] {
    const entries: DirEntry[] = [];
    this.scan(dir, { block: this.tableStart + dir.startBlock, offset: dir.offset }, 0, (r, pos) => {
      const at = pos.block;
      const name = this.meta.read(pos, r.nameSize);
      if (name.includes(0x2f) || name.includes(0)) throw new CorruptImageError('directory entry name contains "/" or NUL', at);
      if (isDotOrDotDot(name)) throw new CorruptImageError('directory entry is named "." or ".."', at);
      entries.push(entryOf(r, name));
      return false;
    });
    return entries;
  }

  /**
   * The entry called `name`, using the directory index of extended directories to skip ahead.
   * Names are compared where they lie in the metadata (most differ in their first bytes); only a
   * match is copied out. A name no valid listing holds (empty, over 256 bytes, with "/" or NUL,
   * "." or "..") is never found, so a match needs no further checks.
   */
  lookup(dir: DirInode, name: Buffer): DirEntry | undefined {
    if (name.length === 0 || name.length > MAX_NAME || name.includes(0x2f) || name.includes(0) || isDotOrDotDot(name)) return undefined;
    let start: MetadataPosition = { block: this.tableStart + dir.startBlock, offset: dir.offset };
    let consumed = 0;
    for (const idx of this.index(dir)) {
      if (Buffer.compare(idx.name, name) > 0) break;
      start = { block: this.tableStart + idx.startBlock, offset: (dir.offset + idx.index) % 8192 };
      consumed = idx.index;
    }
    let found: DirEntry | undefined;
    this.scan(dir, start, consumed, (r, pos) => {
      const c = this.meta.compareAt(pos, r.nameSize, name);
      if (c === 0) found = entryOf(r, Buffer.from(name));
      // Listings are sorted: once past the name it cannot come later.
      return c >= 0;
    });
    return found;
  }

  private index(dir: DirInode): DirIndexEntry[] {
    if (dir.indexPos === undefined || dir.indexCount === 0) return [];
    const pos = { ...dir.indexPos };
    const out: DirIndexEntry[] = [];
    const listing = Math.max(0, dir.fileSize - 3);
    for (let i = 0; i < dir.indexCount; i++) {
      const at = pos.block;
      const h = this.meta.read(pos, 12);
      const size = h.readUInt32LE(8) + 1;
      if (size > MAX_NAME) throw new CorruptImageError(`directory index name length ${size} is over ${MAX_NAME}`, at);
      const index = h.readUInt32LE(0);
      if (index >= listing) throw new CorruptImageError(`directory index position ${index} is past the listing (${listing} bytes)`, at);
      out.push({ index, startBlock: h.readUInt32LE(4), name: this.meta.read(pos, size) });
    }
    return out;
  }

  /**
   * Walk the listing from `pos`, `consumed` bytes already accounted for, calling `visit` for each
   * entry, with `pos` at its name, until it returns true; `visit` reads (or compares) the name,
   * advancing `pos` past it. Every step consumes bytes of a listing whose size the inode states,
   * so a corrupt listing cannot loop forever.
   */
  private scan(dir: DirInode, pos: MetadataPosition, consumed: number, visit: (r: EntryRecord, pos: MetadataPosition) => boolean): void {
    const total = dir.fileSize <= 3 ? 0 : dir.fileSize - 3;
    let header: DirHeader | undefined;
    let left = 0;
    // One record, refilled per entry (a visitor that keeps it copies what it needs).
    const record: EntryRecord = { header: { count: 0, startBlock: 0, inodeNumber: 0 }, nameSize: 0, type: 0, offset: 0, inodeDelta: 0 };
    while (consumed < total) {
      const at = pos.block;
      if (left === 0) {
        const h = this.meta.header.read(this.meta, pos, 12);
        header = { count: h.readUInt32LE(0) + 1, startBlock: h.readUInt32LE(4), inodeNumber: h.readUInt32LE(8) };
        if (header.count > MAX_RUN) throw new CorruptImageError(`directory run of ${header.count} entries is over ${MAX_RUN}`, at);
        left = header.count;
        consumed += 12;
        continue;
      }
      const e = this.meta.body.read(this.meta, pos, 8);
      const nameSize = e.readUInt16LE(6) + 1;
      if (nameSize > MAX_NAME) throw new CorruptImageError(`directory entry name length ${nameSize} is over ${MAX_NAME}`, at);
      const type = e.readUInt16LE(4);
      if (type < 1 || type > 7) throw new CorruptImageError(`directory entry type ${type} is invalid`, at);
      const offset = e.readUInt16LE(0);
      if (offset >= 8192) throw new CorruptImageError(`directory entry inode offset ${offset} is past a metadata block`, at);
      consumed += 8 + nameSize;
      left--;
      record.header = header!;
      record.nameSize = nameSize;
      record.type = type;
      record.offset = offset;
      record.inodeDelta = e.readInt16LE(2);
      if (visit(record, pos)) return;
    }
    if (consumed !== total) throw new CorruptImageError(`directory listing overruns its size (${total} bytes)`, pos.block);
  }
}

function entryOf(r: EntryRecord, name: Buffer): DirEntry {
  return new ListedEntry(name, makeRef(r.header.startBlock, r.offset), r.type, (r.header.inodeNumber + r.inodeDelta) >>> 0);
}

/** A DirEntry; a class so that `ref` takes the wide form before the first entry (see WIDE). */
class ListedEntry implements DirEntry {
  ref = WIDE;
  constructor(
    readonly name: Buffer,
    ref: number,
    readonly type: number,
    readonly inodeNumber: number,
  ) {
    this.ref = ref;
  }
  get kind(): InodeKind {
    return kindOfType(this.type);
  }
}

function isDotOrDotDot(name: Buffer): boolean {
  return (name.length === 1 && name[0] === 0x2e) || (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e);
}
