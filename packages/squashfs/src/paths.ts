import { Readable } from 'node:stream';
import { CorruptImageError, FsError } from './errors.js';
import type { Inode } from './inode.js';
import type { SquashFS } from './squashfs.js';
import { Dirent, Stats } from './stats.js';

/** Like Linux: at most 40 symlinks followed while resolving one path. */
const MAX_SYMLINKS = 40;

/**
 * A path inside the image, as node:fs takes paths: a string, the raw bytes (Buffer or
 * Uint8Array: names need not be UTF-8), or a `file:` URL (its pathname, percent-decoded).
 */
export type PathLike = string | Buffer | Uint8Array | URL;

/** The raw bytes of a path argument; anything else is refused with a TypeError, as node:fs does. */
export function pathBytes(path: PathLike): Buffer {
  if (typeof path === 'string') return Buffer.from(path);
  if (Buffer.isBuffer(path)) return path;
  if (path instanceof Uint8Array) return Buffer.from(path.buffer, path.byteOffset, path.byteLength);
  if (path instanceof URL) {
    if (path.protocol !== 'file:') throw new TypeError(`The URL must be of scheme file (got ${path.protocol})`);
    return Buffer.from(decodeURIComponent(path.pathname));
  }
  throw new TypeError(`The "path" argument must be of type string, Buffer, Uint8Array or URL (got ${typeof path})`);
}

/** The non-empty components of a path, as raw bytes ("a//b/" gives a, b). */
export function components(path: PathLike): Buffer[] {
  const b = pathBytes(path);
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= b.length; i++) {
    if (i === b.length || b[i] === 0x2f) {
      if (i > start) out.push(b.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

/**
 * Resolve a path inside the image. Absolute symlink targets resolve against the image root (the
 * image is a root filesystem), "..' at the root stays at the root, like chroot.
 */
export function resolvePath(fs: SquashFS, path: PathLike, followLast: boolean): Inode {
  const display = pathBytes(path).toString();
  const stack: Inode[] = [fs.root()];
  const todo = components(path).reverse();
  let links = 0;
  while (todo.length > 0) {
    const name = todo.pop()!;
    const cur = stack[stack.length - 1]!;
    if (name.length === 1 && name[0] === 0x2e) continue;
    if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) {
      if (stack.length > 1) stack.pop();
      continue;
    }
    if (cur.kind !== 'dir') throw new FsError('ENOTDIR', 'stat', display);
    const child = fs.lookup(cur, name);
    if (child === undefined) throw new FsError('ENOENT', 'stat', display);
    if (child.kind === 'symlink' && (todo.length > 0 || followLast)) {
      if (++links > MAX_SYMLINKS) throw new FsError('ELOOP', 'stat', display);
      const target = child.target;
      if (target[0] === 0x2f) stack.length = 1;
      todo.push(...components(target).reverse());
      continue;
    }
    stack.push(child);
  }
  return stack[stack.length - 1]!;
}

export interface WalkEntry {
  /** Path inside the image, "/" for the root. */
  path: string;
  /** The same path as raw bytes (names need not be UTF-8). */
  pathBuffer: Buffer;
  inode: Inode;
  stats: Stats;
  depth: number;
}

/**
 * Every entry below `start` (itself first), depth first in directory order. A directory that
 * contains one of its own ancestors (a corrupt image) raises CorruptImageError instead of looping.
 */
export function* walkTree(fs: SquashFS, start: PathLike = '/'): Generator<WalkEntry> {
  const root = resolvePath(fs, start, false);
  const base = components(start);
  const rootPath = base.length === 0 ? Buffer.from('/') : Buffer.concat(base.flatMap((c) => [Buffer.from('/'), c]));
  const ancestors = new Set<number>();
  function* visit(inode: Inode, pathBuffer: Buffer, depth: number): Generator<WalkEntry> {
    yield { path: pathBuffer.toString('utf8'), pathBuffer, inode, stats: new Stats(fs.attr(inode)), depth };
    if (inode.kind !== 'dir') return;
    if (ancestors.has(inode.ref)) throw new CorruptImageError(`directory cycle at ${pathBuffer.toString()}`, undefined);
    ancestors.add(inode.ref);
    const prefix = pathBuffer.length === 1 ? pathBuffer : Buffer.concat([pathBuffer, Buffer.from('/')]);
    for (const e of fs.readdir(inode)) {
      yield* visit(fs.inode(e.ref), Buffer.concat([prefix, e.name]), depth + 1);
    }
    ancestors.delete(inode.ref);
  }
  yield* visit(root, rootPath, 0);
}

/** How many bytes (or entries) an async call handles before it lets the event loop run. */
const ASYNC_CHUNK_BYTES = 1 << 20;
const ASYNC_CHUNK_ENTRIES = 512;

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

type ReadFileOptions = BufferEncoding | { encoding?: BufferEncoding | null; flag?: string; signal?: AbortSignal } | null | undefined;

function encodingOf(options: ReadFileOptions): BufferEncoding | undefined {
  if (options === null || options === undefined) return undefined;
  if (typeof options === 'string') return options;
  if (options.flag !== undefined && options.flag !== 'r') throw new TypeError(`the image is read-only: flag "${options.flag}" is not supported`);
  return options.encoding ?? undefined;
}

/**
 * node:fs/promises-shaped read API over an image (plus the *Sync forms). The promise-returning
 * calls never hold the event loop for long: file contents are decoded a megabyte at a time and
 * directory walks a few hundred entries at a time, with the loop let run in between.
 */
export class PathApi {
  constructor(private readonly fs: SquashFS) {}

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

  /** Like fs.promises.readdir, also `{ recursive: true }` (paths relative to `path`). */
  async readdir(path: PathLike): Promise<string[]>;
  async readdir(path: PathLike, options: { withFileTypes: true; recursive?: boolean }): Promise<Dirent[]>;
  async readdir(path: PathLike, options: { withFileTypes?: false; recursive?: boolean }): Promise<string[]>;
  async readdir(path: PathLike, options?: { withFileTypes?: boolean; recursive?: boolean }): Promise<string[] | Dirent[]> {
    if (options?.recursive !== true) return options?.withFileTypes ? this.readdirSync(path, { withFileTypes: true }) : this.readdirSync(path);
    const top = pathBytes(path);
    const dir = resolvePath(this.fs, top, true);
    if (dir.kind !== 'dir') throw new FsError('ENOTDIR', 'scandir', top.toString());
    const names: string[] = [];
    const dirents: Dirent[] = [];
    let n = 0;
    const base = top.toString().replace(/\/+$/, '') || '/';
    for (const e of walkTree(this.fs, top)) {
      if (e.depth === 0) continue;
      const rel = e.path.slice(base === '/' ? 1 : base.length + 1);
      if (options.withFileTypes) {
        const slash = e.pathBuffer.lastIndexOf(0x2f);
        dirents.push(new Dirent(e.pathBuffer.subarray(slash + 1), typeOf(e.inode), e.path.slice(0, e.path.lastIndexOf('/')) || '/'));
      } else names.push(rel);
      if (++n % ASYNC_CHUNK_ENTRIES === 0) await yieldToLoop();
    }
    return options.withFileTypes ? dirents : names;
  }
  readdirSync(path: PathLike): string[];
  readdirSync(path: PathLike, options: { withFileTypes: true }): Dirent[];
  readdirSync(path: PathLike, options?: { withFileTypes?: boolean }): string[] | Dirent[] {
    const dir = resolvePath(this.fs, path, true);
    const display = pathBytes(path).toString();
    if (dir.kind !== 'dir') throw new FsError('ENOTDIR', 'scandir', display);
    const entries = this.fs.readdir(dir);
    if (options?.withFileTypes) return entries.map((e) => new Dirent(e.name, e.type, display));
    return entries.map((e) => e.name.toString('utf8'));
  }

  async readlink(path: PathLike): Promise<string> {
    return this.readlinkSync(path);
  }
  readlinkSync(path: PathLike): string {
    const inode = resolvePath(this.fs, path, false);
    if (inode.kind !== 'symlink') throw new FsError('EINVAL', 'readlink', pathBytes(path).toString());
    return inode.target.toString('utf8');
  }

  /** Like fs.promises.readFile: a Buffer, or a string with an encoding. */
  async readFile(path: PathLike, options?: ReadFileOptions): Promise<Buffer | string>;
  async readFile(path: PathLike, options: BufferEncoding | { encoding: BufferEncoding }): Promise<string>;
  async readFile(path: PathLike, options?: ReadFileOptions): Promise<Buffer | string> {
    const encoding = encodingOf(options);
    const signal = typeof options === 'object' && options !== null ? options.signal : undefined;
    const inode = this.regular(path, 'open');
    const size = inode.kind === 'file' ? inode.fileSize : 0;
    const out = Buffer.allocUnsafe(size);
    for (let pos = 0; pos < size; pos += ASYNC_CHUNK_BYTES) {
      signal?.throwIfAborted();
      this.fs.read(inode, pos, Math.min(ASYNC_CHUNK_BYTES, size - pos)).copy(out, pos);
      if (pos + ASYNC_CHUNK_BYTES < size) await yieldToLoop();
    }
    return encoding !== undefined ? out.toString(encoding) : out;
  }
  readFileSync(path: PathLike, options?: ReadFileOptions): Buffer | string {
    const encoding = encodingOf(options);
    const inode = this.regular(path, 'open');
    const data = Buffer.from(this.fs.read(inode, 0, inode.kind === 'file' ? inode.fileSize : 0));
    return encoding !== undefined ? data.toString(encoding) : data;
  }

  /** A stream of the file's bytes, read a block at a time (a 4 GiB file never sits in memory). */
  createReadStream(path: PathLike, options: { start?: number; end?: number } = {}): Readable {
    const inode = this.regular(path, 'open');
    const size = inode.kind === 'file' ? inode.fileSize : 0;
    let pos = options.start ?? 0;
    const end = Math.min(size, options.end === undefined ? size : options.end + 1);
    const chunk = this.fs.superblock.blockSize;
    const fs = this.fs;
    return new Readable({
      highWaterMark: chunk,
      read() {
        try {
          if (pos >= end) {
            this.push(null);
            return;
          }
          const n = Math.min(chunk - (pos % chunk), end - pos);
          const buf = fs.read(inode, pos, n);
          pos += buf.length;
          this.push(Buffer.from(buf));
        } catch (err) {
          this.destroy(err as Error);
        }
      },
    });
  }

  /** Every entry below `start`, depth first; the event loop runs every few hundred entries. */
  async *walk(start: PathLike = '/'): AsyncGenerator<WalkEntry> {
    let n = 0;
    for (const e of walkTree(this.fs, start)) {
      yield e;
      if (++n % ASYNC_CHUNK_ENTRIES === 0) await yieldToLoop();
    }
  }

  private regular(path: PathLike, syscall: string): Inode {
    const inode = resolvePath(this.fs, path, true);
    const display = pathBytes(path).toString();
    if (inode.kind === 'dir') throw new FsError('EISDIR', syscall, display);
    if (inode.kind !== 'file') throw new FsError('EINVAL', syscall, display);
    return inode;
  }
}

/** The directory-entry type number Dirent takes (squashfs's basic inode types 1..7). */
function typeOf(inode: Inode): number {
  return { dir: 1, file: 2, symlink: 3, block: 4, char: 5, fifo: 6, socket: 7 }[inode.kind];
}
