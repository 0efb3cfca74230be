import { Errno, FuseErrno, ROOT_ID, type DirEntry, type Entry, type FileSystem, type OpenResult, type Statfs } from '@atomfs/fuse';
import { SquashFS, squashfsTree, type Inode } from '@atomfs/squashfs';
import { resolvePath } from '@atomfs/tree';
import { SERVING } from '../layers/serving.js';

export { SERVING };
import { toFuseAttr } from './attr.js';
import { checkSquashfsXattrName, kernelReadlink, refuseLongSymlink, symlinkRefused } from './kernel-rules.js';

/** Options of one single-image mount; structured-cloneable so every worker thread can open the image itself. */
export interface SquashfsFsOptions {
  image: string;
  offset?: number;
  /** Serve this directory of the image as the mount's root. */
  subdir?: string;
}

/**
 * One squashfs image served over FUSE (the squashfuse replacement). Node ids are derived from
 * inode references, (ref + 2, the root is 1), so every thread maps ids the same way without
 * shared state, and the kernel's FORGETs need no bookkeeping.
 */
export class SquashfsFs implements FileSystem {
  readonly immutable = true;
  private readonly rootRef: number;
  private readonly blksize: number;
  /** Multi-block READ replies are assembled here (grows to the largest request, at most 16 MiB). */
  private scratch: Buffer = Buffer.alloc(0);

  constructor(
    readonly image: SquashFS,
    subdir?: string,
  ) {
    const root = subdir === undefined ? image.root() : resolvePath(squashfsTree(image), subdir, true);
    if (root.kind !== 'dir') throw new Error(`--subdir ${subdir} is not a directory in the image`);
    this.rootRef = root.ref;
    this.blksize = image.superblock.blockSize;
  }

  private id(inode: Inode): bigint {
    return inode.ref === this.rootRef ? ROOT_ID : BigInt(inode.ref) + 2n;
  }

  private node(id: bigint): Inode {
    return this.image.inode(id === ROOT_ID ? this.rootRef : Number(id - 2n));
  }

  private entry(inode: Inode): Entry {
    return { nodeid: this.id(inode), attr: toFuseAttr(this.image.attr(inode), BigInt(inode.inodeNumber)) };
  }

  lookup(parent: bigint, name: Buffer): Entry | undefined {
    const dir = this.node(parent);
    if (dir.kind !== 'dir') throw new FuseErrno(Errno.ENOTDIR);
    const child = this.image.lookup(dir, name);
    if (child === undefined) return undefined;
    if (child.kind === 'symlink') refuseLongSymlink(child.mode, child.target.length);
    return this.entry(child);
  }

  getattr(node: bigint) {
    return this.entry(this.node(node)).attr;
  }

  readlink(node: bigint): Buffer {
    const inode = this.node(node);
    if (inode.kind !== 'symlink') throw new FuseErrno(Errno.EINVAL);
    return kernelReadlink(inode.target);
  }

  open(node: bigint): OpenResult {
    const inode = this.node(node);
    if (inode.kind === 'dir') throw new FuseErrno(Errno.EISDIR);
    // The handle is the inode reference: a read worker finds the inode from it alone.
    return { fh: BigInt(inode.ref), keepCache: true };
  }

  read(_node: bigint, fh: bigint, offset: number, size: number): Buffer {
    const inode = this.image.inode(Number(fh));
    if (inode.kind !== 'file') throw new FuseErrno(Errno.EINVAL);
    const end = Math.min(inode.fileSize, offset + size);
    if (offset >= end) return EMPTY;
    const bs = this.blksize;
    // Inside one block: a view of the cached decoded block, no copy.
    if (Math.floor(offset / bs) === Math.floor((end - 1) / bs)) return this.image.read(inode, offset, end - offset);
    // Several blocks (the kernel asks for up to 1 MiB): assembled in one buffer reused across
    // calls, which FileSystem.read allows (the reply is written before the next call). A fresh
    // 1 MiB buffer per READ page-faulted on every request, a large share of the server's CPU in
    // a sequential-read profile.
    const n = end - offset;
    if (this.scratch.length < n) this.scratch = Buffer.allocUnsafe(n);
    return this.scratch.subarray(0, this.image.readInto(inode, offset, n, this.scratch));
  }

  lseek(_node: bigint, fh: bigint, offset: number, whence: 'data' | 'hole'): number {
    const inode = this.image.inode(Number(fh));
    if (inode.kind !== 'file') throw new FuseErrno(Errno.EINVAL);
    const pos = this.image.seek(inode, offset, whence);
    if (pos === undefined) throw new FuseErrno(Errno.ENXIO);
    return pos;
  }

  *readdir(node: bigint, _fh: bigint, offset: bigint, plus: boolean): Iterable<DirEntry> {
    const dir = this.node(node);
    if (dir.kind !== 'dir') throw new FuseErrno(Errno.ENOTDIR);
    // Cookies: 1 after ".", 2 after "..", then 3 + index of each entry.
    const start = Number(offset);
    if (start < 1) yield { name: DOT, cookie: 1n, ino: BigInt(dir.inodeNumber), mode: dir.mode };
    // ".." carries the stored parent inode number, the root's included, as the kernel's
    // squashfs shows it: mksquashfs stores inode count + 1 there, gensquashfs 0 (glibc's
    // readdir then hides the root's "..", on the kernel's mount too).
    if (start < 2) yield { name: DOTDOT, cookie: 2n, ino: BigInt(dir.parentInode), mode: 0o040000 };
    const entries = this.image.readdir(dir);
    for (let i = Math.max(0, start - 2); i < entries.length; i++) {
      const e = entries[i]!;
      let child = plus ? this.image.inode(e.ref) : undefined;
      // Listed, but the kernel LOOKUPs it (and is refused) rather than getting its attributes.
      if (child?.kind === 'symlink' && symlinkRefused(child.mode, child.target.length)) child = undefined;
      yield {
        name: e.name,
        cookie: BigInt(i + 3),
        ino: BigInt(e.inodeNumber),
        mode: TYPE_MODE[e.type] ?? 0,
        ...(child !== undefined ? { entry: this.entry(child) } : {}),
      };
    }
  }

  statfs(): Statfs {
    const s = this.image.statfs();
    return { blocks: s.blocks, bfree: 0, bavail: 0, files: s.files, ffree: 0, bsize: s.blockSize, namelen: s.nameMax, frsize: s.blockSize };
  }

  getxattr(node: bigint, name: Buffer): Buffer | undefined {
    checkSquashfsXattrName(name);
    return this.image.getxattr(this.node(node), name);
  }

  listxattr(node: bigint): Buffer[] {
    const inode = this.node(node);
    if (!this.image.xattrsSupported(inode)) throw new FuseErrno(Errno.EOPNOTSUPP);
    return this.image.xattrList(inode).map((x) => x.name);
  }

  close(): void {
    this.image.close();
  }
}

const EMPTY = Buffer.alloc(0);
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

const TYPE_MODE: Record<number, number> = { 1: 0o040000, 2: 0o100000, 3: 0o120000, 4: 0o060000, 5: 0o020000, 6: 0o010000, 7: 0o140000 };

/** Entry point for FUSE worker threads (see @atomfs/fuse FileSystemModule). */
export function createFileSystem(options: unknown): FileSystem {
  const o = options as SquashfsFsOptions;
  return new SquashfsFs(SquashFS.open(o.image, { offset: o.offset ?? 0, ...SERVING }), o.subdir);
}

