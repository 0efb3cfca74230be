/**
 * What a filesystem served over FUSE implements. Methods are synchronous (they run on the
 * session thread, or on a read worker for `read`); node ids are opaque u64 bigints and the
 * root is ROOT_ID (1n). To answer an error, throw `new FuseErrno(Errno.ENOENT)`; any other
 * exception becomes EIO plus a log line.
 */
import type { Attr } from './wire/attr.js';
import type { Statfs } from './wire/statfs.js';

export type { Attr } from './wire/attr.js';
export type { Statfs } from './wire/statfs.js';

export const ROOT_ID = 1n;

export interface Entry {
  /** Node id the kernel will use for this name from now on (nonzero). */
  nodeid: bigint;
  /** (nodeid, generation) must never name two different files in one mount's lifetime. Default 0n. */
  generation?: bigint;
  attr: Attr;
}

export interface OpenResult {
  /** File handle passed back to read/release. With read workers, read must work from it alone. */
  fh: bigint;
  /** Keep the page cache across opens (default: the FileSystem's `immutable`). */
  keepCache?: boolean;
  /** Bypass the page cache (reads go straight to the server, may return short). */
  directIo?: boolean;
}

export interface OpendirResult {
  fh: bigint;
  /** Let the kernel cache the listing (default: the FileSystem's `immutable`). */
  cacheDir?: boolean;
}

export interface DirEntry {
  /** Entry name: 1..1024 bytes, no '/' or NUL. The FileSystem emits "." and ".." itself. */
  name: Buffer;
  /**
   * Opaque nonzero cookie that resumes the listing AFTER this entry: a later
   * readdir(node, fh, cookie) must continue with the following entry.
   */
  cookie: bigint;
  /** st_ino shown by getdents. */
  ino: bigint;
  /** st_mode (only the S_IFMT bits are used here). */
  mode: number;
  /**
   * For READDIRPLUS (`plus` true): the entry as lookup would return it. The session counts
   * it as a lookup (except for "." and ".."), so forget() will come for it later.
   * Omitted ⇒ the kernel gets a plain dirent for this name and LOOKUPs it when needed.
   */
  entry?: Entry;
}

export interface FileSystem {
  /** Content never changes: FOPEN_KEEP_CACHE on open and FOPEN_CACHE_DIR on opendir by default. */
  readonly immutable?: boolean;

  /** undefined ⇒ the name does not exist (negative entry, cached for the negative timeout). */
  lookup(parent: bigint, name: Buffer): Entry | undefined;
  /** The kernel dropped all references to `node` it got from lookup/readdirplus. */
  forget?(node: bigint): void;
  getattr(node: bigint): Attr;
  readlink?(node: bigint): Buffer;
  /** Default: fh = 0n. `flags` are open(2) flags; write access never reaches here (EROFS). */
  open?(node: bigint, flags: number): OpenResult;
  /**
   * Up to `size` bytes at `offset`; fewer ⇒ end of file. A longer buffer is truncated. The
   * buffer only has to stay valid until the reply is written, which happens before the next
   * call on the same thread: reusing one buffer per instance is allowed (and much cheaper
   * than fresh 1 MiB allocations).
   *
   * With read workers this runs in another thread, on another instance built from the same
   * {module, options}: it must be answerable from (node, fh) alone, using no state that
   * open/lookup created in the session thread (encode what read needs into `fh`).
   */
  read(node: bigint, fh: bigint, offset: number, size: number): Buffer;
  /**
   * lseek(2) with SEEK_DATA (`whence` 'data') or SEEK_HOLE ('hole') on an open file: the next
   * position at or after `offset` that holds data or starts a hole. Throw FuseErrno(ENXIO) when
   * there is none or `offset` is past the end. Missing method ⇒ the kernel treats the whole
   * file as data. Answerable from (node, fh) like read.
   */
  lseek?(node: bigint, fh: bigint, offset: number, whence: 'data' | 'hole'): number;
  release?(node: bigint, fh: bigint): void;
  opendir?(node: bigint, flags: number): OpendirResult;
  /**
   * Entries after cookie `offset` (0 = from the start) in a stable order. Iterated lazily:
   * the session stops pulling when the kernel's buffer is full and resumes from the last
   * cookie sent, so a generator avoids building attributes that will not be sent.
   */
  readdir(node: bigint, fh: bigint, offset: bigint, plus: boolean): Iterable<DirEntry>;
  releasedir?(node: bigint, fh: bigint): void;
  statfs?(node: bigint): Statfs;
  /** undefined ⇒ ENODATA. Missing method ⇒ the kernel is told xattrs are unsupported. */
  getxattr?(node: bigint, name: Buffer): Buffer | undefined;
  /** Full names ("user.foo"), without NULs. */
  listxattr?(node: bigint): Buffer[];
  /** Throw FuseErrno(EACCES) to deny. Only called without default_permissions. */
  access?(node: bigint, mask: number): void;
  /** The session ended; free resources. */
  close?(): void;
}

/**
 * A FileSystem described so that any thread can build its own instance:
 * `module` is an absolute path or file: URL of an ESM module exporting
 * `createFileSystem(options)` (sync or async); `options` must be structured-cloneable.
 */
export interface FileSystemModule {
  module: string;
  options?: unknown;
}

export type CreateFileSystem = (options: unknown) => FileSystem | Promise<FileSystem>;

export function isFileSystemModule(value: FileSystem | FileSystemModule): value is FileSystemModule {
  return typeof (value as FileSystemModule).module === 'string' && typeof (value as FileSystem).lookup !== 'function';
}
