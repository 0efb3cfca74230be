import { Readable } from 'node:stream';
import { FsError } from './fs-error.js';
import { readFully, type ImageTree, type TreeNode } from './image-tree.js';
import { pathBytes, resolvePath, type PathLike } from './path.js';
import { Dirent, Stats } from './stats.js';
import { walkTree, type WalkEntry } from './walk.js';

/** How many bytes (or entries) an async call handles before it lets the event loop run. */
const ASYNC_CHUNK_BYTES = 1 << 20;
const ASYNC_CHUNK_ENTRIES = 512;
/** Smallest piece a read stream pushes (a whole number of the image's blocks). */
const STREAM_CHUNK_BYTES = 1 << 16;

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

type BufferOptions = { encoding?: null; flag?: string; signal?: AbortSignal } | null;
type TextOptions = BufferEncoding | { encoding: BufferEncoding; flag?: string; signal?: AbortSignal };
type ReadFileOptions = BufferOptions | TextOptions | { encoding?: BufferEncoding | null; flag?: string; signal?: AbortSignal } | undefined;

function encodingOf(options: ReadFileOptions): BufferEncoding | undefined {
  if (options === null || options === undefined) return undefined;
  if (typeof options === 'string') return options;
  if (options.flag !== undefined && options.flag !== 'r') throw new TypeError(`the image is read-only: flag "${options.flag}" is not supported`);
  return options.encoding ?? undefined;
}

/**
 * node:fs/promises-shaped read API over an image (plus the *Sync forms). The promise-returning
 * calls never hold the event loop for long: file contents are read a megabyte at a time and
 * directory walks a few hundred entries at a time, with the loop let run in between.
 */
export class PathApi<N extends TreeNode> {
  constructor(private readonly tree: ImageTree<N>) {}

  async stat(path: PathLike): Promise<Stats> {
    return this.statSync(path);
  }
  statSync(path: PathLike): Stats {
    return new Stats(this.tree.attr(resolvePath(this.tree, path, true)));
  }
  async lstat(path: PathLike): Promise<Stats> {
    return this.lstatSync(path);
  }
  lstatSync(path: PathLike): Stats {
    return new Stats(this.tree.attr(resolvePath(this.tree, path, false)));
  }

  /** Like fs.promises.readdir, also `{ recursive: true }` (paths relative to `path`). */
  async readdir(path: PathLike): Promise<string[]>;
  async readdir(path: PathLike, options: { withFileTypes: true; recursive?: boolean }): Promise<Dirent[]>;
  async readdir(path: PathLike, options: { withFileTypes?: false; recursive?: boolean }): Promise<string[]>;
  async readdir(path: PathLike, options?: { withFileTypes?: boolean; recursive?: boolean }): Promise<string[] | Dirent[]> {
    if (options?.recursive !== true) return options?.withFileTypes ? this.readdirSync(path, { withFileTypes: true }) : this.readdirSync(path);
    const top = pathBytes(path);
    this.directory(top);
    const names: string[] = [];
    const dirents: Dirent[] = [];
    let n = 0;
    const base = top.toString().replace(/\/+$/, '') || '/';
    for (const e of walkTree(this.tree, top)) {
      if (e.depth === 0) continue;
      if (options.withFileTypes) {
        const slash = e.pathBuffer.lastIndexOf(0x2f);
        dirents.push(new Dirent(e.pathBuffer.subarray(slash + 1), e.node.kind, e.path.slice(0, e.path.lastIndexOf('/')) || '/'));
      } else names.push(e.path.slice(base === '/' ? 1 : base.length + 1));
      if (++n % ASYNC_CHUNK_ENTRIES === 0) await yieldToLoop();
    }
    return options.withFileTypes ? dirents : names;
  }
  readdirSync(path: PathLike): string[];
  readdirSync(path: PathLike, options: { withFileTypes: true }): Dirent[];
  readdirSync(path: PathLike, options?: { withFileTypes?: boolean }): string[] | Dirent[] {
    const entries = this.tree.readdir(this.directory(path));
    if (options?.withFileTypes) return entries.map((e) => new Dirent(e.name, e.kind, pathBytes(path).toString()));
    return entries.map((e) => e.name.toString('utf8'));
  }

  async readlink(path: PathLike): Promise<string> {
    return this.readlinkSync(path);
  }
  readlinkSync(path: PathLike): string {
    const node = resolvePath(this.tree, path, false);
    if (node.kind !== 'symlink') throw new FsError('EINVAL', 'readlink', pathBytes(path).toString());
    return this.tree.readlink(node).toString('utf8');
  }

  /** Like fs.promises.readFile: a Buffer, or a string with an encoding. */
  async readFile(path: PathLike, options?: BufferOptions): Promise<Buffer>;
  async readFile(path: PathLike, options: TextOptions): Promise<string>;
  async readFile(path: PathLike, options?: ReadFileOptions): Promise<Buffer | string>;
  async readFile(path: PathLike, options?: ReadFileOptions): Promise<Buffer | string> {
    const encoding = encodingOf(options);
    const signal = typeof options === 'object' && options !== null ? options.signal : undefined;
    const file = this.regular(path);
    const size = this.tree.attr(file).size;
    const out = Buffer.allocUnsafe(size);
    for (let pos = 0; pos < size; pos += ASYNC_CHUNK_BYTES) {
      signal?.throwIfAborted();
      readFully(this.tree, file, pos, out.subarray(pos, Math.min(pos + ASYNC_CHUNK_BYTES, size)));
      if (pos + ASYNC_CHUNK_BYTES < size) await yieldToLoop();
    }
    return encoding !== undefined ? out.toString(encoding) : out;
  }
  readFileSync(path: PathLike, options?: BufferOptions): Buffer;
  readFileSync(path: PathLike, options: TextOptions): string;
  readFileSync(path: PathLike, options?: ReadFileOptions): Buffer | string;
  readFileSync(path: PathLike, options?: ReadFileOptions): Buffer | string {
    const encoding = encodingOf(options);
    const file = this.regular(path);
    const out = Buffer.allocUnsafe(this.tree.attr(file).size);
    readFully(this.tree, file, 0, out);
    return encoding !== undefined ? out.toString(encoding) : out;
  }

  /** A stream of the file's bytes, read a few blocks at a time (a big file never sits in memory). */
  createReadStream(path: PathLike, options: { start?: number; end?: number } = {}): Readable {
    const file = this.regular(path);
    const size = this.tree.attr(file).size;
    let pos = options.start ?? 0;
    const end = Math.min(size, options.end === undefined ? size : options.end + 1);
    const chunk = Math.max(this.tree.blockSize, STREAM_CHUNK_BYTES);
    const tree = this.tree;
    return new Readable({
      highWaterMark: chunk,
      read() {
        try {
          if (pos >= end) {
            this.push(null);
            return;
          }
          // Pieces end on block boundaries: no block is decoded for two pieces.
          const n = Math.min(chunk - (pos % chunk), end - pos);
          const buf = Buffer.allocUnsafe(n);
          readFully(tree, file, pos, buf);
          pos += n;
          this.push(buf);
        } catch (err) {
          this.destroy(err as Error);
        }
      },
    });
  }

  /** Every entry below `start`, depth first; the event loop runs every few hundred entries. */
  async *walk(start: PathLike = '/'): AsyncGenerator<WalkEntry<N> & { stats: Stats }> {
    let n = 0;
    for (const e of walkTree(this.tree, start)) {
      yield { ...e, stats: new Stats(e.attr) };
      if (++n % ASYNC_CHUNK_ENTRIES === 0) await yieldToLoop();
    }
  }

  private directory(path: PathLike): N {
    const dir = resolvePath(this.tree, path, true);
    if (dir.kind !== 'dir') throw new FsError('ENOTDIR', 'scandir', pathBytes(path).toString());
    return dir;
  }

  private regular(path: PathLike): N {
    const node = resolvePath(this.tree, path, true);
    if (node.kind === 'dir') throw new FsError('EISDIR', 'open', pathBytes(path).toString());
    if (node.kind !== 'file') throw new FsError('EINVAL', 'open', pathBytes(path).toString());
    return node;
  }
}
