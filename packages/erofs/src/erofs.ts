import { PathApi, type NodeAttr } from '@atomfs/tree';
import { mapUncompressed } from './block-map.js';
import { FileSource, type ByteSource } from './byte-source.js';
import { ExtentDecoder } from './decompress.js';
import { parseDirBlock, type DirEntry } from './directory.js';
import { CorruptImageError } from './errors.js';
import { DataLayout, isCompressed, readInode, type ErofsInode } from './inode.js';
import { Lru } from './lru.js';
import { FeatureIncompat, parseSuperblock, type Superblock } from './superblock.js';
import { erofsTree } from './tree.js';
import { readXattrs, shortPrefix, type Xattr } from './xattr.js';
import { ZMap } from './zmap.js';

export interface StatFs {
  blocks: number;
  blockSize: number;
  files: number;
}

export interface ErofsOptions {
  /** Bytes of decoded extents kept for reuse (default 8 MiB). */
  extentCacheBytes?: number;
}

/** A directory's entries in name order, and an index for lookups. */
interface DirListing {
  entries: DirEntry[];
  byName: Map<string, DirEntry>;
}

/** Directories and symlinks larger than this are refused (the kernel's own tools never write such). */
const MAX_DIR_BYTES = 16 << 20;
const MAX_SYMLINK_BYTES = 64 << 10;

/**
 * An erofs image read through a ByteSource (a file, a buffer, or a dm-verity checked view):
 * inodes by nid, directories, symlinks, xattrs and file data (flat, tail-packed, chunk-based,
 * lz4/lz4hc compressed with either index format, big pclusters, ztailpacking).
 */
export class Erofs {
  /** Open an image file (a window of a file with `offset`). */
  static open(path: string | Buffer, options: ErofsOptions & { offset?: number } = {}): Erofs {
    const source = new FileSource(path, options.offset ?? 0);
    try {
      return new Erofs(source, options);
    } catch (err) {
      source.close();
      throw err;
    }
  }

  readonly superblock: Superblock;
  private readonly inodes = new Lru<number, ErofsInode>(4096);
  private readonly dirs = new Lru<number, DirListing>(200_000);
  private readonly zmaps = new Lru<number, ZMap>(1024);
  private readonly extents: Lru<string, Buffer>;
  private readonly decoder: ExtentDecoder;

  /** node:fs/promises-shaped calls on paths (stat, lstat, readdir, readlink, readFile, createReadStream, walk). */
  readonly paths: PathApi<ErofsInode>;

  constructor(
    readonly source: ByteSource,
    options: ErofsOptions = {},
  ) {
    this.paths = new PathApi(erofsTree(this));
    this.superblock = parseSuperblock(source);
    this.extents = new Lru(options.extentCacheBytes ?? 8 << 20);
    this.decoder = new ExtentDecoder(source, this.superblock);
    const root = this.root();
    if (root.kind !== 'dir') throw new CorruptImageError(`root inode ${root.nid} is not a directory`, root.pos);
  }

  root(): ErofsInode {
    return this.inode(this.superblock.rootNid);
  }

  inode(nid: number): ErofsInode {
    let ino = this.inodes.get(nid);
    if (ino === undefined) {
      ino = readInode(this.source, this.superblock, nid);
      if (ino.layout === DataLayout.CHUNK_BASED && !(this.superblock.featureIncompat & FeatureIncompat.CHUNKED_FILE)) {
        throw new CorruptImageError(`inode ${nid} is chunk-based, which the superblock does not enable`, ino.pos);
      }
      this.inodes.set(nid, ino);
    }
    return ino;
  }

  attr(inode: ErofsInode): NodeAttr {
    const bs = this.superblock.blockSize;
    const blocks = isCompressed(inode) ? inode.u * (bs / 512) : (Math.ceil(inode.size / bs) * bs) / 512;
    const device = inode.kind === 'char' || inode.kind === 'block';
    return {
      ino: inode.nid,
      mode: inode.mode,
      nlink: inode.nlink,
      uid: inode.uid,
      gid: inode.gid,
      size: device ? 0 : inode.size,
      mtime: inode.mtime,
      mtimeNsec: inode.mtimeNsec,
      rdev: device ? inode.u : 0,
      blocks,
      blksize: bs,
    };
  }

  private listing(dir: ErofsInode): DirListing {
    if (dir.kind !== 'dir') throw new Error(`inode ${dir.nid} is not a directory`);
    let l = this.dirs.get(dir.nid);
    if (l !== undefined) return l;
    if (dir.size > MAX_DIR_BYTES) throw new CorruptImageError(`directory inode ${dir.nid} claims ${dir.size} bytes`, dir.pos + 8);
    const data = this.read(dir, 0, dir.size);
    const bs = this.superblock.blockSize;
    const all: DirEntry[] = [];
    for (let off = 0; off < data.length; off += bs) parseDirBlock(data.subarray(off, Math.min(off + bs, data.length)), off, all);
    const entries: DirEntry[] = [];
    const byName = new Map<string, DirEntry>();
    let prev: Buffer | undefined;
    for (const e of all) {
      if (prev !== undefined && Buffer.compare(prev, e.name) >= 0) {
        throw new CorruptImageError(`directory inode ${dir.nid}: entries are not in name order ('${prev.toString('latin1')}' before '${e.name.toString('latin1')}')`, dir.pos);
      }
      prev = e.name;
      const n = e.name.length;
      if ((n === 1 && e.name[0] === 0x2e) || (n === 2 && e.name[0] === 0x2e && e.name[1] === 0x2e)) continue;
      if (e.name.includes(0x2f)) throw new CorruptImageError(`directory inode ${dir.nid} holds a name with '/'`, dir.pos);
      entries.push(e);
      byName.set(e.name.toString('latin1'), e);
    }
    l = { entries, byName };
    this.dirs.set(dir.nid, l, Math.max(1, entries.length));
    return l;
  }

  /** The entries of a directory (without "." and ".."), in name order. */
  readdir(dir: ErofsInode): DirEntry[] {
    return this.listing(dir).entries;
  }

  /** The child `name` of `dir`, or undefined. */
  lookup(dir: ErofsInode, name: Buffer): ErofsInode | undefined {
    const e = this.listing(dir).byName.get(name.toString('latin1'));
    return e === undefined ? undefined : this.inode(e.nid);
  }

  /** The ".." entry of a directory (the root's is itself). */
  parentNid(dir: ErofsInode): number {
    // "." and ".." are dropped from listings; read the first block again for "..".
    const bs = this.superblock.blockSize;
    const first: DirEntry[] = [];
    parseDirBlock(this.read(dir, 0, Math.min(bs, dir.size)), 0, first);
    const dotdot = first.find((e) => e.name.length === 2 && e.name[0] === 0x2e && e.name[1] === 0x2e);
    return dotdot?.nid ?? dir.nid;
  }

  readlink(inode: ErofsInode): Buffer {
    if (inode.kind !== 'symlink') throw new Error(`inode ${inode.nid} is not a symlink`);
    if (inode.size > MAX_SYMLINK_BYTES) throw new CorruptImageError(`symlink inode ${inode.nid} claims ${inode.size} bytes`, inode.pos + 8);
    return this.read(inode, 0, inode.size);
  }

  xattrs(inode: ErofsInode): Xattr[] {
    return readXattrs(this.source, this.superblock, inode, this.longPrefixes());
  }

  private prefixes: Buffer[] | undefined;

  /**
   * The long xattr name prefixes (xattr_prefixes): records of a le16 length and
   * {u8 short prefix index, infix bytes}, each 4-aligned, from xattr_prefix_start * 4 in the
   * packed inode when there is one, else in the image.
   */
  private longPrefixes(): Buffer[] {
    if (this.prefixes !== undefined) return this.prefixes;
    const sb = this.superblock;
    const out: Buffer[] = [];
    const packed = sb.packedNid === undefined ? undefined : this.inode(sb.packedNid);
    const readAt = (pos: number, len: number): Buffer => {
      if (packed === undefined) return this.source.read(pos, len);
      if (pos + len > packed.size) throw new CorruptImageError(`xattr prefix at ${pos} runs past the packed inode`, packed.pos);
      return this.read(packed, pos, len);
    };
    let pos = sb.xattrPrefixStart * 4;
    for (let i = 0; i < sb.xattrPrefixCount; i++) {
      pos = Math.ceil(pos / 4) * 4;
      const len = readAt(pos, 2).readUInt16LE(0);
      if (len < 1) throw new CorruptImageError(`xattr prefix ${i} is empty`, pos);
      const rec = readAt(pos + 2, len);
      const base = shortPrefix(rec[0]!);
      if (base === undefined) throw new CorruptImageError(`xattr prefix ${i} builds on unknown name index ${rec[0]}`, pos + 2);
      out.push(Buffer.concat([base, rec.subarray(1)]));
      pos += 2 + len;
    }
    this.prefixes = out;
    return out;
  }

  getxattr(inode: ErofsInode, name: Buffer): Buffer | undefined {
    return this.xattrs(inode).find((x) => x.name.equals(name))?.value;
  }

  /** Up to `length` bytes from `position` (short only at the end of the file). */
  read(inode: ErofsInode, position: number, length: number): Buffer {
    const n = Math.max(0, Math.min(length, inode.size - position));
    const out = Buffer.allocUnsafe(n);
    this.readInto(inode, position, n, out);
    return out;
  }

  /** Like read, into `dst`; returns the number of bytes written. */
  readInto(inode: ErofsInode, position: number, length: number, dst: Buffer): number {
    if (inode.kind !== 'file' && inode.kind !== 'dir' && inode.kind !== 'symlink') return 0;
    const end = Math.min(inode.size, position + Math.min(length, dst.length));
    let off = position;
    while (off < end) {
      if (isCompressed(inode)) {
        const z = this.zmap(inode);
        const ext = z.map(off);
        if (ext.fragmentOff !== undefined) {
          off = this.readFragment(inode, ext.fragmentOff + (off - ext.la), Math.min(end, ext.la + ext.llen) - off, dst.subarray(off - position), off);
          continue;
        }
        const key = `${inode.nid}:${ext.la}`;
        let data = this.extents.get(key);
        if (data === undefined) {
          data = this.decoder.decode(ext);
          this.extents.set(key, data, data.length);
        }
        const stop = Math.min(end, ext.la + ext.llen);
        data.copy(dst, off - position, off - ext.la, stop - ext.la);
        off = stop;
      } else {
        const m = mapUncompressed(this.source, this.superblock, inode, off);
        const stop = Math.min(end, m.la + m.llen);
        if (stop <= off) throw new CorruptImageError(`inode ${inode.nid}: empty mapping at ${off}`, inode.pos);
        const out = dst.subarray(off - position, stop - position);
        if (m.pa === undefined) out.fill(0);
        else if (this.source.readInto !== undefined) this.source.readInto(m.pa + (off - m.la), stop - off, out);
        else this.source.read(m.pa + (off - m.la), stop - off).copy(out);
        off = stop;
      }
    }
    return Math.max(0, end - position);
  }

  /**
   * `length` bytes of a file's fragment from the packed inode (fragments: file tails, or whole
   * small files, stored together in one hidden inode) at `packedPos`; returns the file offset
   * reached (`at` + length).
   */
  private readFragment(inode: ErofsInode, packedPos: number, length: number, dst: Buffer, at: number): number {
    const nid = this.superblock.packedNid;
    if (nid === undefined || nid === inode.nid) throw new CorruptImageError(`inode ${inode.nid} has a fragment but there is no other packed inode`, inode.pos);
    const packed = this.inode(nid);
    if (packed.kind !== 'file' || !Number.isSafeInteger(packedPos) || packedPos + length > packed.size) {
      throw new CorruptImageError(`fragment of inode ${inode.nid} ([${packedPos}, ${packedPos + length})) lies outside the packed inode (${packed.size} bytes)`, inode.pos);
    }
    // The packed inode is an ordinary file (compressed itself, usually) with no fragment of its own.
    if (this.readInto(packed, packedPos, length, dst) !== length) throw new CorruptImageError(`packed inode ${nid} is short`, packed.pos);
    return at + length;
  }

  private zmap(inode: ErofsInode): ZMap {
    let z = this.zmaps.get(inode.nid);
    if (z === undefined) {
      z = new ZMap(this.source, this.superblock, inode);
      this.zmaps.set(inode.nid, z);
    }
    return z;
  }

  statfs(): StatFs {
    return { blocks: this.superblock.blocks, blockSize: this.superblock.blockSize, files: this.superblock.inodeCount };
  }

  close(): void {
    this.inodes.clear();
    this.dirs.clear();
    this.zmaps.clear();
    this.extents.clear();
    this.source.close?.();
  }
}

