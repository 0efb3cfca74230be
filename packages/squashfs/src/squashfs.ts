import { FsError, PathApi, type NodeAttr } from '@atomfs/tree';
import { FileSource, type ByteSource } from './byte-source.js';
import { BlockPool } from './block-pool.js';
import { ByteLru } from './cache.js';
import { createDecompressor } from './compression/index.js';
import { COMPRESSOR_IDS, type CompressorName, type Decompressor } from './compression/decompressor.js';
import { DirectoryReader, type DirEntry } from './directory.js';
import { CorruptImageError } from './errors.js';
import { FileDataReader } from './file-data.js';
import { NO_FRAGMENT, NO_XATTR, readInode, type DirInode, type FileInode, type Inode, type InodeContext } from './inode.js';
import { LookupTable } from './lookup-table.js';
import { MetadataReader, splitRef, type MetadataBlock } from './metadata.js';
import { parseSuperblock, SUPERBLOCK_SIZE, SuperblockFlag, type Superblock } from './superblock.js';
import { squashfsTree } from './tree.js';
import { XattrTable, type Xattr } from './xattr.js';

export interface SquashfsOptions {
  /** Byte offset of the image inside the file (images embedded in larger files). */
  offset?: number;
  /**
   * One memory budget for all of this image's caches (default 48 MiB), shared out as: decoded
   * data and fragment blocks 2/3, metadata blocks 1/6, decoded inodes 1/12, block indexes 1/12.
   * The two options below set one share on its own.
   */
  cacheBytes?: number;
  /** Budget for decoded metadata blocks (default: its share of cacheBytes, 8 MiB). */
  metadataCacheBytes?: number;
  /** Budget for decoded data and fragment blocks (default: its share of cacheBytes, 32 MiB). */
  dataCacheBytes?: number;
  /**
   * Recycle the buffers of evicted data blocks (default false). Faster on first reads, but a
   * Buffer returned by read() or readBlock() is then only valid until the next read from this
   * image: copy what you keep. For servers that send each result before reading again.
   */
  reuseBlockBuffers?: boolean;
}


export interface StatFs {
  blockSize: number;
  blocks: number;
  files: number;
  nameMax: number;
}

/**
 * One squashfs 4.0 image. This is the inode-level API (what a FUSE server needs): everything is
 * addressed by inode objects or inode references, never by paths. The path-level, node:fs-shaped
 * API (@atomfs/tree's PathApi) lives on top of it.
 */
export class SquashFS {
  readonly superblock: Superblock;
  readonly compressor: CompressorName;
  /** Compressor options block payload when the image has one. */
  readonly compressionOptions: Buffer | undefined;
  private readonly meta: MetadataReader;
  private readonly dirs: DirectoryReader;
  private readonly data: FileDataReader;
  private readonly idTable: LookupTable;
  private ids: number[] | undefined;
  private readonly xattrs: XattrTable | undefined;
  private readonly exportTable: LookupTable | undefined;
  private readonly inodes: ByteLru<number, Inode>;
  private readonly metaCache: ByteLru<number, MetadataBlock>;
  private readonly ctx: InodeContext;
  /** The path-level API, shaped like node:fs/promises (stat, lstat, readdir, readFile, walk, …). */
  readonly paths: PathApi<Inode> = new PathApi(squashfsTree(this));

  /** `path` may be a Buffer: file names need not be UTF-8. */
  static open(path: string | Buffer, options: SquashfsOptions = {}): SquashFS {
    const source = new FileSource(path, options.offset ?? 0);
    try {
      return new SquashFS(source, options);
    } catch (err) {
      source.close();
      throw err;
    }
  }

  constructor(
    readonly source: ByteSource,
    options: SquashfsOptions = {},
  ) {
    const sb = parseSuperblock(source.read(0, Math.min(SUPERBLOCK_SIZE, source.size)), source.size);
    this.superblock = sb;
    const name = COMPRESSOR_IDS[sb.compression];
    if (name === undefined) throw new CorruptImageError(`unknown compressor id ${sb.compression}`, 20);
    this.compressor = name;
    const end = sb.bytesUsed;
    const total = options.cacheBytes ?? 48 << 20;
    this.inodes = new ByteLru<number, Inode>(Math.floor(total / 12));
    const metaCache = new ByteLru<number, MetadataBlock>(options.metadataCacheBytes ?? Math.floor(total / 6));
    this.metaCache = metaCache;
    let decompressor: Decompressor;
    if (sb.flags & SuperblockFlag.CompressorOptions) {
      // The options block is a metadata block at 96; mksquashfs always stores it uncompressed.
      if (SUPERBLOCK_SIZE + 2 > end) throw new CorruptImageError('compressor options block is missing', SUPERBLOCK_SIZE);
      const h = source.read(SUPERBLOCK_SIZE, 2).readUInt16LE(0);
      const len = h & 0x7fff;
      if (!(h & 0x8000) || len === 0 || len > 64 || SUPERBLOCK_SIZE + 2 + len > end) {
        throw new CorruptImageError(`compressor options block header 0x${h.toString(16)} is invalid`, SUPERBLOCK_SIZE);
      }
      this.compressionOptions = Buffer.from(source.read(SUPERBLOCK_SIZE + 2, len));
      decompressor = createDecompressor(sb.compression, this.compressionOptions);
    } else {
      this.compressionOptions = undefined;
      decompressor = createDecompressor(sb.compression);
    }
    this.meta = new MetadataReader(source, decompressor, metaCache, end);
    this.dirs = new DirectoryReader(this.meta, sb.directoryTableStart);
    this.idTable = new LookupTable(this.meta, source, 'id', sb.idTableStart, sb.idCount, 4, end);
    this.xattrs = sb.xattrIdTableStart === undefined ? undefined : new XattrTable(this.meta, source, sb.xattrIdTableStart, end);
    this.exportTable =
      sb.exportTableStart === undefined ? undefined : new LookupTable(this.meta, source, 'export', sb.exportTableStart, sb.inodeCount, 8, end);
    const fragments =
      sb.fragmentCount > 0 ? new LookupTable(this.meta, source, 'fragment', sb.fragmentTableStart!, sb.fragmentCount, 16, end) : undefined;
    const dataCacheBytes = options.dataCacheBytes ?? Math.floor((total * 2) / 3);
    // The cache evicts an eighth of its budget at a time: keep that many buffers for reuse.
    const pool = options.reuseBlockBuffers === true ? new BlockPool(sb.blockSize, Math.ceil(dataCacheBytes / 8 / sb.blockSize) + 1) : undefined;
    this.data = new FileDataReader({
      source,
      decompressor,
      meta: this.meta,
      blockSize: sb.blockSize,
      end,
      fragments,
      blocks: new ByteLru<number, Buffer>(dataCacheBytes, pool && ((b) => pool.give(b))),
      index: new ByteLru(Math.floor(total / 12)),
      ...(pool ? { pool } : {}),
    });
    this.ctx = {
      blockSize: sb.blockSize,
      blockLog: sb.blockLog,
      idOf: (index, from) => this.idOf(index, from),
    };
    // Reading the root now makes a broken image fail at open rather than on first use.
    if (this.root().kind !== 'dir') throw new CorruptImageError('root inode is not a directory', 32);
  }

  close(): void {
    this.source.close?.();
  }

  private idOf(index: number, from: number): number {
    if (this.ids === undefined) {
      const ids: number[] = [];
      for (let i = 0; i < this.superblock.idCount; i++) ids.push(this.idTable.entry(i).readUInt32LE(0));
      this.ids = ids;
    }
    const id = this.ids[index];
    if (id === undefined) throw new CorruptImageError(`uid/gid index ${index} is out of range (${this.ids.length} ids)`, from);
    return id;
  }

  /** The inode at inode reference `ref` (relative to the inode table). */
  inode(ref: number): Inode {
    const hit = this.inodes.get(ref);
    if (hit !== undefined) return hit;
    const { block, offset } = splitRef(ref);
    if (offset >= 8192) throw new CorruptImageError(`inode reference offset ${offset} is past a metadata block`, undefined);
    const abs = this.superblock.inodeTableStart + block;
    if (abs >= this.superblock.directoryTableStart) {
      throw new CorruptImageError(`inode reference ${ref} points outside the inode table`, undefined);
    }
    const inode = readInode(this.meta, { block: abs, offset }, ref, this.ctx);
    this.inodes.set(ref, inode, inode.kind === 'symlink' ? 256 + inode.target.length : 256);
    return inode;
  }

  root(): DirInode {
    const r = this.inode(this.superblock.rootInode);
    if (r.kind !== 'dir') throw new CorruptImageError('root inode is not a directory', 32);
    return r;
  }

  /** Inode by inode number, through the export table (only images built with it, the mksquashfs default). */
  inodeByNumber(n: number): Inode | undefined {
    if (this.exportTable === undefined) return undefined;
    const ref = this.exportTable.entry(n - 1).readBigUInt64LE(0);
    if (ref > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptImageError(`export table entry ${n} is out of range`, undefined);
    return this.inode(Number(ref));
  }

  readdir(dir: Inode): DirEntry[] {
    return this.dirs.list(asDir(dir));
  }

  /** The child inode called `name`, or undefined. */
  lookup(dir: Inode, name: Buffer | string): Inode | undefined {
    const e = this.dirs.lookup(asDir(dir), typeof name === 'string' ? Buffer.from(name) : name);
    return e === undefined ? undefined : this.inode(e.ref);
  }

  /** Bytes of a regular file; short only at end of file. */
  read(file: Inode, position: number, length: number): Buffer {
    if (file.kind !== 'file') throw new FsError(file.kind === 'dir' ? 'EISDIR' : 'EINVAL', 'read', `inode ${file.inodeNumber}`);
    return this.data.read(file, position, length);
  }

  /**
   * Bytes of a regular file written to dst (at most dst.length); how many (short only at end of
   * file). For callers that reuse one buffer across reads instead of getting a new one each time.
   */
  readInto(file: Inode, position: number, length: number, dst: Buffer): number {
    if (file.kind !== 'file') throw new FsError(file.kind === 'dir' ? 'EISDIR' : 'EINVAL', 'read', `inode ${file.inodeNumber}`);
    if (!Number.isSafeInteger(position) || position < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new RangeError(`readInto: position ${position} and length ${length} must be non-negative integers`);
    }
    return this.data.readInto(file, position, length, dst);
  }

  /** Decoded bytes of data block `index` of a file (the last one may be its tail fragment). */
  readBlock(file: FileInode, index: number): Buffer {
    return this.data.block(file, index);
  }

  /**
   * readBlock() into `dst` (at least blockSize bytes long); returns the block's length. Data
   * blocks are decoded straight into dst, bypassing the block cache (for one-pass readers).
   */
  readBlockInto(file: FileInode, index: number, dst: Buffer): number {
    return this.data.blockInto(file, index, dst);
  }

  /**
   * The whole fragment block holding the tail of `file`, decoded into `dst` (at least blockSize
   * bytes); returns its length. The tail is at file.fragmentOffset (bounds not checked here).
   */
  readFragmentBlockInto(file: FileInode, dst: Buffer): number {
    return this.data.fragmentBlockInto(file, dst);
  }

  /**
   * lseek(SEEK_DATA / SEEK_HOLE) on a regular file as the kernel's squashfs answers it: holes
   * are whole blocks stored with length 0 (sparse blocks), a tail kept in a fragment is data,
   * and the end of the file is an implicit hole. Returns the position, or undefined where the
   * kernel answers ENXIO (offset outside the file, or no data after it).
   */
  seek(file: Inode, offset: number, whence: 'data' | 'hole'): number | undefined {
    if (file.kind !== 'file') throw new FsError(file.kind === 'dir' ? 'EISDIR' : 'EINVAL', 'lseek', `inode ${file.inodeNumber}`);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= file.fileSize) return undefined;
    const bs = this.superblock.blockSize;
    const index = Math.floor(offset / bs);
    const wantHole = whence === 'hole';
    // Blocks past the block list (only a fragment tail) are data.
    if (index >= file.blockCount) return wantHole ? file.fileSize : offset;
    const found = this.data.scanBlocks(file, index, wantHole);
    if (found === index) return offset;
    if (found < file.blockCount) return found * bs;
    if (wantHole) return file.fileSize;
    return file.fragment !== NO_FRAGMENT ? file.blockCount * bs : undefined;
  }

  readlink(inode: Inode): Buffer {
    if (inode.kind !== 'symlink') throw new FsError('EINVAL', 'readlink', `inode ${inode.inodeNumber}`);
    return inode.target;
  }

  /** All xattrs, full names ("user.x"), in stored order. */
  xattrList(inode: Inode): Xattr[] {
    if (inode.xattrIndex === NO_XATTR || this.xattrs === undefined) {
      if (inode.xattrIndex !== NO_XATTR) throw new CorruptImageError(`inode ${inode.inodeNumber} has xattrs but the image has no xattr table`, undefined);
      return [];
    }
    return this.xattrs.read(inode.xattrIndex);
  }

  /**
   * Whether the kernel's squashfs would answer listxattr for this inode (rather than
   * EOPNOTSUPP). It gives every directory, symlink and extended inode a listxattr that fails
   * when the image has no xattr table; basic files, devices, fifos and sockets have none and
   * list nothing.
   */
  xattrsSupported(inode: Inode): boolean {
    if (this.xattrs !== undefined) return true;
    return !(inode.kind === 'dir' || inode.kind === 'symlink' || inode.type > 7);
  }

  getxattr(inode: Inode, name: Buffer | string): Buffer | undefined {
    const n = typeof name === 'string' ? Buffer.from(name) : name;
    return this.xattrList(inode).find((x) => x.name.equals(n))?.value;
  }

  attr(inode: Inode): NodeAttr {
    const size = inode.kind === 'file' ? inode.fileSize : inode.kind === 'symlink' ? inode.target.length : inode.kind === 'dir' ? inode.fileSize : 0;
    return {
      ino: inode.inodeNumber,
      mode: inode.mode,
      nlink: inode.nlink,
      uid: inode.uid,
      gid: inode.gid,
      size,
      mtime: inode.mtime,
      mtimeNsec: 0,
      rdev: inode.kind === 'block' || inode.kind === 'char' ? inode.rdev : 0,
      blocks: this.blocks(inode),
      blksize: DEV_BLOCK_SIZE,
    };
  }

  /**
   * st_blocks as the kernel's squashfs reports it (fs/squashfs/inode.c), so `du` agrees on both
   * mounts: a regular file counts its size minus the bytes of sparse (all-zero) blocks,
   * directories, symlinks and devices count nothing, and an inode with xattrs adds its stored
   * xattr list size. Each part is rounded up to 512-byte units on its own.
   */
  private blocks(inode: Inode): number {
    let blocks = 0;
    if (inode.kind === 'file') {
      const stored = inode.fileSize - inode.sparse;
      if (stored > 0) blocks = Math.floor((stored - 1) / 512) + 1;
    }
    if (inode.xattrIndex !== NO_XATTR && this.xattrs !== undefined) {
      const xattrBytes = this.xattrs.listSize(inode.xattrIndex, undefined);
      if (xattrBytes > 0) blocks += Math.floor((xattrBytes - 1) / 512) + 1;
    }
    return blocks;
  }


  /** Bytes each cache of this image holds now (their budgets: SquashfsOptions.cacheBytes). */
  cacheUse(): { data: number; metadata: number; inodes: number; index: number } {
    return { ...this.data.cacheUse(), metadata: this.metaCache.costUsed, inodes: this.inodes.costUsed };
  }
  statfs(): StatFs {
    const sb = this.superblock;
    return {
      blockSize: sb.blockSize,
      blocks: Math.floor((sb.bytesUsed - 1) / sb.blockSize) + 1,
      files: sb.inodeCount,
      nameMax: 256,
    };
  }
}

/** st_blksize of every inode on the kernel's squashfs (its s_blocksize, SQUASHFS_DEVBLK_SIZE). */
const DEV_BLOCK_SIZE = 1024;

function asDir(inode: Inode): DirInode {
  if (inode.kind !== 'dir') throw new FsError('ENOTDIR', 'readdir', `inode ${inode.inodeNumber}`);
  return inode;
}
