import { Readable } from 'node:stream';
import { pathComponents } from '@atomfs/squashfs';
import type { DirEntry } from './directory.js';
import type { Erofs, InodeAttr } from './erofs.js';
import { CorruptImageError, FsError } from './errors.js';
import type { ErofsInode } from './inode.js';

export type PathLike = string | Buffer;

/** Symlinks followed while resolving one path (Linux's MAXSYMLINKS). */
const MAX_SYMLINKS = 40;


/**
 * Resolve a path inside the image as the kernel would on a mount of it: absolute and relative
 * paths both start at the image's root, ".." stops at the root, symlinks are followed (the last
 * component only when `followLast`), at most 40 of them.
 */
export function resolvePath(fs: Erofs, path: PathLike, followLast: boolean): ErofsInode {
  const text = path.toString();
  const raw = typeof path === 'string' ? Buffer.from(path) : path;
  const stack: ErofsInode[] = [fs.root()];
  const pending = pathComponents(raw).reverse();
  let links = 0;
  while (pending.length > 0) {
    const name = pending.pop()!;
    const dir = stack[stack.length - 1]!;
    if (name.length === 1 && name[0] === 0x2e) continue;
    if (dir.kind !== 'dir') throw new FsError('ENOTDIR', 'stat', text);
    if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) {
      if (stack.length > 1) stack.pop();
      continue;
    }
    const child = fs.lookup(dir, name);
    if (child === undefined) throw new FsError('ENOENT', 'stat', text);
    if (child.kind === 'symlink' && (pending.length > 0 || followLast)) {
      if (++links > MAX_SYMLINKS) throw new FsError('ELOOP', 'stat', text);
      const target = fs.readlink(child);
      if (target[0] === 0x2f) stack.length = 1;
      pending.push(...pathComponents(target).reverse());
      continue;
    }
    stack.push(child);
  }
  return stack[stack.length - 1]!;
}

export interface WalkEntry {
  /** Path from the root, "/" for the root itself. */
  path: Buffer;
  inode: ErofsInode;
}

/** Every entry below `start` (itself first), depth first in name order. */
export function* walkTree(fs: Erofs, start: PathLike = '/'): Generator<WalkEntry> {
  const top = resolvePath(fs, start, true);
  const base = typeof start === 'string' ? Buffer.from(start) : start;
  const prefix = pathComponents(base);
  const rootPath = Buffer.from('/' + prefix.map((c) => c.toString('latin1')).join('/'), 'latin1');
  yield { path: rootPath, inode: top };
  const stack: { path: Buffer; nid: number; entries: DirEntry[]; i: number }[] = [];
  if (top.kind === 'dir') stack.push({ path: rootPath, nid: top.nid, entries: fs.readdir(top), i: 0 });
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.i >= frame.entries.length) {
      stack.pop();
      continue;
    }
    const e = frame.entries[frame.i++]!;
    const path = frame.path.length === 1 ? Buffer.concat([frame.path, e.name]) : Buffer.concat([frame.path, Buffer.from('/'), e.name]);
    const inode = fs.inode(e.nid);
    yield { path, inode };
    if (inode.kind === 'dir') {
      // A directory that contains itself (a damaged image) would make the walk endless.
      if (stack.some((f) => f.nid === inode.nid)) throw new CorruptImageError(`directory inode ${inode.nid} is its own ancestor (at ${path.toString()})`, inode.pos);
      stack.push({ path, nid: inode.nid, entries: fs.readdir(inode), i: 0 });
    }
  }
}

/** How much an async call does before it lets the event loop run. */
const ASYNC_CHUNK_BYTES = 1 << 20;
const ASYNC_CHUNK_ENTRIES = 256;

function yieldToLoop(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

function display(path: PathLike): string {
  return path.toString();
}

/** node:fs.Stats-shaped attributes (erofs keeps one time: atime and ctime mirror mtime, as the kernel shows). */
export class Stats {
  readonly dev = 0;
  readonly ino: number;
  readonly mode: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  readonly rdev: number;
  readonly size: number;
  readonly blksize: number;
  readonly blocks: number;
  readonly mtimeMs: number;
  readonly atimeMs: number;
  readonly ctimeMs: number;
  readonly mtime: Date;
  readonly atime: Date;
  readonly ctime: Date;
  /** Nanoseconds of the times (node:fs has them in its bigint form only). */
  readonly mtimeNsec: number;

  constructor(a: InodeAttr) {
    this.ino = a.ino;
    this.mode = a.mode;
    this.nlink = a.nlink;
    this.uid = a.uid;
    this.gid = a.gid;
    this.rdev = a.rdev;
    this.size = a.size;
    this.blksize = a.blksize;
    this.blocks = a.blocks;
    this.mtimeNsec = a.mtimeNsec;
    this.mtimeMs = this.atimeMs = this.ctimeMs = a.mtime * 1e3 + a.mtimeNsec / 1e6;
    this.mtime = new Date(this.mtimeMs);
    this.atime = new Date(this.atimeMs);
    this.ctime = new Date(this.ctimeMs);
  }
  private is(type: number): boolean {
    return (this.mode & 0o170000) === type;
  }
  isFile(): boolean {
    return this.is(0o100000);
  }
  isDirectory(): boolean {
    return this.is(0o040000);
  }
  isSymbolicLink(): boolean {
    return this.is(0o120000);
  }
  isBlockDevice(): boolean {
    return this.is(0o060000);
  }
  isCharacterDevice(): boolean {
    return this.is(0o020000);
  }
  isFIFO(): boolean {
    return this.is(0o010000);
  }
  isSocket(): boolean {
    return this.is(0o140000);
  }
}

/** A directory entry as fs.readdir(path, { withFileTypes: true }) gives it. */
export class Dirent extends Stats {
  readonly name: string;
  constructor(
    /** The raw name bytes (names need not be UTF-8; `name` decodes them as node:fs does). */
    readonly nameBuffer: Buffer,
    attr: InodeAttr,
    readonly parentPath: string,
  ) {
    super(attr);
    this.name = nameBuffer.toString('utf8');
  }
}

/**
 * node:fs/promises-shaped read API over an image (plus the *Sync forms). The promise-returning
 * calls let the event loop run every megabyte of file data or few hundred entries.
 */
export class PathApi {
  constructor(readonly fs: Erofs) {}

  async stat(path: PathLike): Promise<Stats> {
    return this.statSync(path);
  }
  statSync(path: PathLike): Stats {
    return new Stats(this.fs.attr(resolvePath(this.fs, path, true)));
  }
  async lstat(path: PathLike): Promise<Stats> {
    return this.lstatSync(path);
  }
  lstatSync(path: PathLike): Stats {
    return new Stats(this.fs.attr(resolvePath(this.fs, path, false)));
  }

  /** Like fs.promises.readdir: names, or Dirents with `{ withFileTypes: true }`. */
  async readdir(path: PathLike): Promise<string[]>;
  async readdir(path: PathLike, options: { withFileTypes: true }): Promise<Dirent[]>;
  async readdir(path: PathLike, options?: { withFileTypes?: boolean }): Promise<string[] | Dirent[]> {
    return options?.withFileTypes === true ? this.readdirSync(path, { withFileTypes: true }) : this.readdirSync(path);
  }
  readdirSync(path: PathLike): string[];
  readdirSync(path: PathLike, options: { withFileTypes: true }): Dirent[];
  readdirSync(path: PathLike, options?: { withFileTypes?: boolean }): string[] | Dirent[] {
    const dir = resolvePath(this.fs, path, true);
    if (dir.kind !== 'dir') throw new FsError('ENOTDIR', 'scandir', display(path));
    const entries = this.fs.readdir(dir);
    if (options?.withFileTypes === true) return entries.map((e) => new Dirent(e.name, this.fs.attr(this.fs.inode(e.nid)), display(path)));
    return entries.map((e) => e.name.toString('utf8'));
  }

  async readlink(path: PathLike): Promise<string> {
    return this.readlinkSync(path);
  }
  readlinkSync(path: PathLike): string {
    const node = resolvePath(this.fs, path, false);
    if (node.kind !== 'symlink') throw new FsError('EINVAL', 'readlink', display(path));
    return this.fs.readlink(node).toString('utf8');
  }

  /** Like fs.promises.readFile: a Buffer, or a string with an encoding. */
  async readFile(path: PathLike): Promise<Buffer>;
  async readFile(path: PathLike, encoding: BufferEncoding): Promise<string>;
  async readFile(path: PathLike, encoding?: BufferEncoding): Promise<Buffer | string> {
    const node = this.regular(path);
    const out = Buffer.allocUnsafe(node.size);
    for (let pos = 0; pos < node.size; pos += ASYNC_CHUNK_BYTES) {
      this.fs.readInto(node, pos, Math.min(ASYNC_CHUNK_BYTES, node.size - pos), out.subarray(pos));
      if (pos + ASYNC_CHUNK_BYTES < node.size) await yieldToLoop();
    }
    return encoding !== undefined ? out.toString(encoding) : out;
  }
  readFileSync(path: PathLike): Buffer;
  readFileSync(path: PathLike, encoding: BufferEncoding): string;
  readFileSync(path: PathLike, encoding?: BufferEncoding): Buffer | string {
    const node = this.regular(path);
    const out = this.fs.read(node, 0, node.size);
    return encoding !== undefined ? out.toString(encoding) : out;
  }

  /** A stream of the file's bytes, a megabyte at a time (a big file never sits in memory). */
  createReadStream(path: PathLike, options: { start?: number; end?: number } = {}): Readable {
    const node = this.regular(path);
    let pos = options.start ?? 0;
    const end = Math.min(node.size, options.end === undefined ? node.size : options.end + 1);
    const fs = this.fs;
    return new Readable({
      highWaterMark: ASYNC_CHUNK_BYTES,
      read() {
        try {
          if (pos >= end) {
            this.push(null);
            return;
          }
          const buf = fs.read(node, pos, Math.min(ASYNC_CHUNK_BYTES, end - pos));
          pos += buf.length;
          this.push(buf);
        } catch (err) {
          this.destroy(err as Error);
        }
      },
    });
  }

  /** Every entry below `start` (itself first), depth first; the event loop runs every few hundred. */
  async *walk(start: PathLike = '/'): AsyncGenerator<WalkEntry & { stats: Stats }> {
    let n = 0;
    for (const e of walkTree(this.fs, start)) {
      yield { ...e, stats: new Stats(this.fs.attr(e.inode)) };
      if (++n % ASYNC_CHUNK_ENTRIES === 0) await yieldToLoop();
    }
  }

  private regular(path: PathLike): ErofsInode {
    const node = resolvePath(this.fs, path, true);
    if (node.kind === 'dir') throw new FsError('EISDIR', 'open', display(path));
    if (node.kind !== 'file') throw new FsError('EINVAL', 'open', display(path));
    return node;
  }
}
