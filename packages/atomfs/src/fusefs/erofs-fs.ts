import { Errno, FuseErrno, ROOT_ID, type Attr, type DirEntry, type Entry, type FileSystem, type OpenResult, type Statfs } from '@atomfs/fuse';
import { Erofs, erofsTree, FileSource, type ErofsInode } from '@atomfs/erofs';
import { resolvePath } from '@atomfs/tree';
import { toFuseAttr } from './attr.js';

/** Options of one single-image mount; structured-cloneable so every worker thread opens the image itself. */
export interface ErofsFsOptions {
  image: string;
  /** Serve this directory of the image as the mount's root. */
  subdir?: string;
}

/** The longest name erofs stores (EROFS_NAME_LEN). */
const NAME_MAX = 255;
/** S_IFMT bits of the dirent file types (EROFS_FT_*). */
const TYPE_MODE: Record<number, number> = { 1: 0o100000, 2: 0o040000, 3: 0o020000, 4: 0o060000, 5: 0o010000, 6: 0o140000, 7: 0o120000 };
const XATTR_PREFIXES = ['user.', 'trusted.', 'security.', 'system.posix_acl_access', 'system.posix_acl_default'].map((p) => Buffer.from(p));
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
const EMPTY = Buffer.alloc(0);

/**
 * One erofs image served over FUSE as the kernel's erofs shows it (`atomfs erofs mount`): node
 * ids are nids + 2 (the root is 1), so every thread maps ids the same way without shared state;
 * st_ino is the nid, st_blksize the block size, atime and ctime mirror mtime (nanoseconds
 * included); xattr names of the five namespaces erofs stores, EOPNOTSUPP for others.
 */
export class ErofsFs implements FileSystem {
  readonly immutable = true;
  private readonly rootNid: number;
  private scratch: Buffer = Buffer.alloc(0);

  constructor(
    readonly image: Erofs,
    subdir?: string,
  ) {
    const root = subdir === undefined ? image.root() : resolvePath(erofsTree(image), subdir, true);
    if (root.kind !== 'dir') throw new Error(`--subdir ${subdir} is not a directory in the image`);
    this.rootNid = root.nid;
  }

  private id(inode: ErofsInode): bigint {
    return inode.nid === this.rootNid ? ROOT_ID : BigInt(inode.nid) + 2n;
  }

  private node(id: bigint): ErofsInode {
    return this.image.inode(id === ROOT_ID ? this.rootNid : Number(id - 2n));
  }

  private attr(inode: ErofsInode): Attr {
    const a = this.image.attr(inode);
    return toFuseAttr(a, BigInt(a.ino));
  }

  private entry(inode: ErofsInode): Entry {
    return { nodeid: this.id(inode), attr: this.attr(inode) };
  }

  lookup(parent: bigint, name: Buffer): Entry | undefined {
    const dir = this.node(parent);
    if (dir.kind !== 'dir') throw new FuseErrno(Errno.ENOTDIR);
    const child = this.image.lookup(dir, name);
    return child === undefined ? undefined : this.entry(child);
  }

  getattr(node: bigint): Attr {
    return this.attr(this.node(node));
  }

  readlink(node: bigint): Buffer {
    const inode = this.node(node);
    if (inode.kind !== 'symlink') throw new FuseErrno(Errno.EINVAL);
    return this.image.readlink(inode);
  }

  open(node: bigint): OpenResult {
    const inode = this.node(node);
    if (inode.kind === 'dir') throw new FuseErrno(Errno.EISDIR);
    // The handle is the nid: a read worker finds the inode from it alone.
    return { fh: BigInt(inode.nid), keepCache: true };
  }

  read(_node: bigint, fh: bigint, offset: number, size: number): Buffer {
    const inode = this.image.inode(Number(fh));
    if (inode.kind !== 'file') throw new FuseErrno(Errno.EINVAL);
    const n = Math.max(0, Math.min(size, inode.size - offset));
    if (n === 0) return EMPTY;
    // One buffer reused across calls, which FileSystem.read allows (the reply goes out first).
    if (this.scratch.length < n) this.scratch = Buffer.allocUnsafe(n);
    return this.scratch.subarray(0, this.image.readInto(inode, offset, n, this.scratch));
  }

  *readdir(node: bigint, _fh: bigint, offset: bigint, plus: boolean): Iterable<DirEntry> {
    const dir = this.node(node);
    if (dir.kind !== 'dir') throw new FuseErrno(Errno.ENOTDIR);
    // Cookies: 1 after ".", 2 after "..", then 3 + index of each entry.
    const start = Number(offset);
    if (start < 1) yield { name: DOT, cookie: 1n, ino: BigInt(dir.nid), mode: dir.mode };
    if (start < 2) yield { name: DOTDOT, cookie: 2n, ino: BigInt(this.image.parentNid(dir)), mode: 0o040000 };
    const entries = this.image.readdir(dir);
    for (let i = Math.max(0, start - 2); i < entries.length; i++) {
      const e = entries[i]!;
      yield {
        name: e.name,
        cookie: BigInt(i + 3),
        ino: BigInt(e.nid),
        mode: TYPE_MODE[e.fileType] ?? 0,
        ...(plus ? { entry: this.entry(this.image.inode(e.nid)) } : {}),
      };
    }
  }

  statfs(): Statfs {
    const s = this.image.statfs();
    return { blocks: s.blocks, bfree: 0, bavail: 0, files: s.files, ffree: 0, bsize: s.blockSize, namelen: NAME_MAX, frsize: s.blockSize };
  }

  getxattr(node: bigint, name: Buffer): Buffer | undefined {
    if (!XATTR_PREFIXES.some((p) => name.length >= p.length && name.subarray(0, p.length).equals(p))) throw new FuseErrno(Errno.EOPNOTSUPP);
    return this.image.getxattr(this.node(node), name);
  }

  listxattr(node: bigint): Buffer[] {
    return this.image.xattrs(this.node(node)).map((x) => x.name);
  }

  close(): void {
    this.image.close();
  }
}

/** Entry point for FUSE worker threads (see @atomfs/fuse FileSystemModule). */
export function createFileSystem(options: unknown): FileSystem {
  const o = options as ErofsFsOptions;
  return new ErofsFs(new Erofs(new FileSource(o.image)), o.subdir);
}
