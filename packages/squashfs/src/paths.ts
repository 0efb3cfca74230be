import { Readable } from 'node:stream';
import { CorruptImageError, FsError } from './errors.js';
import type { Inode } from './inode.js';
import type { SquashFS } from './squashfs.js';
import { Dirent, Stats } from './stats.js';

/** Like Linux: at most 40 symlinks followed while resolving one path. */
const MAX_SYMLINKS = 40;

export type PathLike = string | Buffer;

function components(path: PathLike): Buffer[] {
  const b = typeof path === 'string' ? Buffer.from(path) : path;
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
  const display = path.toString();
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
  const startBuf = typeof start === 'string' ? Buffer.from(start) : start;
  const base = components(startBuf);
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

/** node:fs/promises-shaped read API over an image. */
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

  async readdir(path: PathLike): Promise<string[]>;
  async readdir(path: PathLike, options: { withFileTypes: true }): Promise<Dirent[]>;
  async readdir(path: PathLike, options?: { withFileTypes?: boolean }): Promise<string[] | Dirent[]> {
    return options?.withFileTypes ? this.readdirSync(path, { withFileTypes: true }) : this.readdirSync(path);
  }
  readdirSync(path: PathLike): string[];
  readdirSync(path: PathLike, options: { withFileTypes: true }): Dirent[];
  readdirSync(path: PathLike, options?: { withFileTypes?: boolean }): string[] | Dirent[] {
    const dir = resolvePath(this.fs, path, true);
    if (dir.kind !== 'dir') throw new FsError('ENOTDIR', 'scandir', path.toString());
    const entries = this.fs.readdir(dir);
    if (options?.withFileTypes) return entries.map((e) => new Dirent(e.name, e.type, path.toString()));
    return entries.map((e) => e.name.toString('utf8'));
  }

  async readlink(path: PathLike): Promise<string> {
    return this.readlinkSync(path);
  }
  readlinkSync(path: PathLike): string {
    const inode = resolvePath(this.fs, path, false);
    if (inode.kind !== 'symlink') throw new FsError('EINVAL', 'readlink', path.toString());
    return inode.target.toString('utf8');
  }

  async readFile(path: PathLike): Promise<Buffer> {
    return this.readFileSync(path);
  }
  readFileSync(path: PathLike): Buffer {
    const inode = this.regular(path, 'open');
    return Buffer.from(this.fs.read(inode, 0, inode.kind === 'file' ? inode.fileSize : 0));
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

  async *walk(start: PathLike = '/'): AsyncGenerator<WalkEntry> {
    yield* walkTree(this.fs, start);
  }

  private regular(path: PathLike, syscall: string): Inode {
    const inode = resolvePath(this.fs, path, true);
    if (inode.kind === 'dir') throw new FsError('EISDIR', syscall, path.toString());
    if (inode.kind !== 'file') throw new FsError('EINVAL', syscall, path.toString());
    return inode;
  }
}
