/**
 * The host's blob cache: content-addressed files `<dir>/blobs/sha256/<hex>` shared by every
 * mount (and `atomfs pull`) of one user, root's under /var/cache/atomfs. A blob is a sparse file
 * of its full size plus a chunk map `<hex>.chunks` (one byte per CHUNK_BYTES: 1 = present).
 * A fetcher writes a chunk's bytes first and its map byte after, so a map byte never claims
 * bytes that are not there (a fetcher killed in between leaves the chunk absent, fetched again).
 * Concurrent fetchers of one chunk write the same bytes. Nothing read from here is trusted on
 * its own: the layer's dm-verity check sits above every read, and `pull` checks the digest of a
 * whole blob, clearing its map when it does not match.
 */
import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BlobCacheError } from './errors.js';

/**
 * Unit of fetching and of the presence map. Misses are fetched as runs of chunks in one request,
 * so a small chunk costs no extra round trips for large reads, and fetches less around small ones
 * (see the registry benchmark). Every user of a cache must agree on it: a map of another length
 * is reset.
 */
export const CHUNK_BYTES = 256 << 10;

/** Default bound of the cache's disk use; ATOMFS_CACHE_MAX_BYTES overrides it. */
export const DEFAULT_CACHE_MAX_BYTES = 20 * 1024 ** 3;

/**
 * $ATOMFS_CACHE_DIR, else /var/cache/atomfs for root, else $XDG_CACHE_HOME/atomfs or
 * ~/.cache/atomfs: per user, like the mount state (a user must not feed bytes to root's cache,
 * nor read what root fetched with root's credentials).
 */
export function defaultCacheDir(): string {
  const env = process.env.ATOMFS_CACHE_DIR;
  if (env !== undefined && env !== '') return env;
  if (isHostRoot()) return '/var/cache/atomfs';
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg !== undefined && xdg.startsWith('/')) return join(xdg, 'atomfs');
  return join(process.env.HOME ?? homedir(), '.cache', 'atomfs');
}

/**
 * euid 0 with the identity uid map: uid 0 of a user namespace is an ordinary user of the host,
 * who can neither write /var/cache nor be trusted by root's mounts, so it gets a per-user cache.
 */
function isHostRoot(): boolean {
  if (process.geteuid?.() !== 0) return false;
  try {
    const lines = readFileSync('/proc/self/uid_map', 'utf8').trim().split('\n');
    return lines.length === 1 && lines[0]!.trim().split(/\s+/).join(' ') === '0 0 4294967295';
  } catch {
    return false;
  }
}

export function cacheMaxBytes(): number {
  const v = Number(process.env.ATOMFS_CACHE_MAX_BYTES);
  return Number.isSafeInteger(v) && v > 0 ? v : DEFAULT_CACHE_MAX_BYTES;
}

/** A directory of ours: created 0700 when missing, refused when someone else owns it or can write it. */
function ensureOwnDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const me = process.geteuid?.() ?? 0;
  if (!st.isDirectory()) throw new BlobCacheError(`blob cache ${dir} is not a directory`);
  if (st.uid !== me) throw new BlobCacheError(`refusing blob cache ${dir}: owned by uid ${st.uid}, not by you (uid ${me})`);
  if ((st.mode & 0o022) !== 0) throw new BlobCacheError(`refusing blob cache ${dir}: writable by others (mode ${(st.mode & 0o7777).toString(8)})`);
}

/** The blob directory of a cache, checked (and made) as ensureOwnDir says. */
export function openCacheDir(dir: string): string {
  ensureOwnDir(dir);
  ensureOwnDir(join(dir, 'blobs'));
  ensureOwnDir(join(dir, 'blobs', 'sha256'));
  return join(dir, 'blobs', 'sha256');
}

export function blobDataPath(cacheDir: string, hex: string): string {
  return join(cacheDir, 'blobs', 'sha256', hex);
}

/** Lowest index ≥ 0 of a run of chunks, and how many. */
export interface ChunkRun {
  first: number;
  count: number;
}

/** One blob of the cache, open: its data file and its chunk map. */
export class CachedBlob {
  readonly chunks: number;
  readonly dataPath: string;
  readonly mapPath: string;
  /** Inode of the data file: a fetcher writing by path checks it still names this file. */
  readonly ino: number;
  private dataFd: number;
  private mapFd: number;
  /** The map as last read; a 0 is re-read from the file before it is believed. */
  private readonly map: Uint8Array;
  private presentCount = 0;

  constructor(
    readonly cacheDir: string,
    readonly hex: string,
    readonly size: number,
    options: { expectIno?: number } = {},
  ) {
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new BlobCacheError(`not a sha256 digest: ${JSON.stringify(hex)}`);
    this.chunks = Math.ceil(size / CHUNK_BYTES);
    this.dataPath = blobDataPath(cacheDir, hex);
    this.mapPath = `${this.dataPath}.chunks`;
    const flags = constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW;
    this.dataFd = openSync(this.dataPath, flags, 0o600);
    try {
      const st = fstatSync(this.dataFd);
      this.ino = st.ino;
      if (options.expectIno !== undefined && st.ino !== options.expectIno) throw new BlobCacheError(`${this.dataPath} was replaced while in use`);
      const me = process.geteuid?.() ?? 0;
      if (!st.isFile() || st.uid !== me) throw new BlobCacheError(`refusing cached blob ${this.dataPath}: not a regular file of yours`);
      this.mapFd = openSync(this.mapPath, flags, 0o600);
    } catch (err) {
      closeSync(this.dataFd);
      throw err;
    }
    this.map = new Uint8Array(this.chunks);
    const dataSize = fstatSync(this.dataFd).size;
    const mapSize = fstatSync(this.mapFd).size;
    if (dataSize !== size || mapSize !== this.chunks) {
      // New, or left by something else: nothing in it is known to be there.
      ftruncateSync(this.mapFd, 0);
      ftruncateSync(this.mapFd, this.chunks);
      ftruncateSync(this.dataFd, size);
    } else {
      this.refresh(0, this.chunks);
    }
    // The map's mtime says when the blob was last used (eviction takes the oldest first).
    try {
      const now = new Date();
      utimesSync(this.mapPath, now, now);
    } catch {
      // only a hint
    }
  }

  /** Re-read map bytes [first, first+count) from the file (another fetcher may have filled them). */
  private refresh(first: number, count: number): void {
    if (count <= 0) return;
    const view = Buffer.from(this.map.buffer, this.map.byteOffset + first, count);
    let got = 0;
    while (got < count) {
      const n = readSync(this.mapFd, view, got, count - got, first + got);
      if (n === 0) break;
      got += n;
    }
    this.presentCount = 0;
    for (let i = 0; i < this.chunks; i++) this.presentCount += this.map[i] === 1 ? 1 : 0;
  }

  get complete(): boolean {
    return this.presentCount === this.chunks;
  }

  /** Chunks of [position, position+length) that are not present, as runs, after re-reading the map where it said absent. */
  missing(position: number, length: number): ChunkRun[] {
    if (length <= 0) return [];
    const first = Math.floor(position / CHUNK_BYTES);
    const last = Math.floor((position + length - 1) / CHUNK_BYTES);
    let anyAbsent = false;
    for (let c = first; c <= last; c++) if (this.map[c] !== 1) anyAbsent = true;
    if (!anyAbsent) return [];
    this.refresh(first, last - first + 1);
    const runs: ChunkRun[] = [];
    for (let c = first; c <= last; c++) {
      if (this.map[c] === 1) continue;
      const prev = runs[runs.length - 1];
      if (prev !== undefined && prev.first + prev.count === c) prev.count++;
      else runs.push({ first: c, count: 1 });
    }
    return runs;
  }

  /** Byte range [start, end) of a run of chunks. */
  runBytes(run: ChunkRun): { start: number; end: number } {
    return { start: run.first * CHUNK_BYTES, end: Math.min(this.size, (run.first + run.count) * CHUNK_BYTES) };
  }

  /** Store the bytes of a fetched run, then mark its chunks present. */
  store(run: ChunkRun, bytes: Buffer): void {
    const { start, end } = this.runBytes(run);
    if (bytes.length !== end - start) throw new BlobCacheError(`${this.dataPath}: ${bytes.length} bytes for a run of ${end - start}`);
    let off = 0;
    while (off < bytes.length) off += writeSync(this.dataFd, bytes, off, bytes.length - off, start + off);
    const ones = Buffer.alloc(run.count, 1);
    writeSync(this.mapFd, ones, 0, run.count, run.first);
    for (let c = run.first; c < run.first + run.count; c++) {
      if (this.map[c] !== 1) this.presentCount++;
      this.map[c] = 1;
    }
  }

  /** Forget every chunk (content that failed its digest check is fetched again). */
  clear(): void {
    ftruncateSync(this.mapFd, 0);
    ftruncateSync(this.mapFd, this.chunks);
    this.map.fill(0);
    this.presentCount = 0;
  }

  readInto(position: number, length: number, dst: Buffer): void {
    let got = 0;
    while (got < length) {
      const n = readSync(this.dataFd, dst, got, length - got, position + got);
      if (n === 0) throw new BlobCacheError(`${this.dataPath}: ends at ${position + got}, ${length - got} bytes short`);
      got += n;
    }
  }

  close(): void {
    if (this.dataFd >= 0) closeSync(this.dataFd);
    if (this.mapFd >= 0) closeSync(this.mapFd);
    this.dataFd = -1;
    this.mapFd = -1;
  }
}

/**
 * Keep the cache under `maxBytes` of disk: remove the blobs used longest ago (map mtime), never
 * those in `keep`. A mount using a removed blob keeps its open files (and their disk space)
 * until it ends.
 */
export function trimCache(cacheDir: string, maxBytes: number, keep: ReadonlySet<string>): { removed: string[]; bytes: number } {
  const dir = join(cacheDir, 'blobs', 'sha256');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return { removed: [], bytes: 0 };
  }
  const blobs: { hex: string; used: number; bytes: number }[] = [];
  let total = 0;
  for (const n of names) {
    if (!/^[0-9a-f]{64}$/.test(n)) continue;
    try {
      const data = statSync(join(dir, n));
      let used = data.mtimeMs;
      try {
        used = statSync(join(dir, `${n}.chunks`)).mtimeMs;
      } catch {
        // no map: as old as its data
      }
      const bytes = data.blocks * 512;
      total += bytes;
      blobs.push({ hex: n, used, bytes });
    } catch {
      // removed meanwhile
    }
  }
  const removed: string[] = [];
  blobs.sort((a, b) => a.used - b.used);
  for (const b of blobs) {
    if (total <= maxBytes) break;
    if (keep.has(b.hex)) continue;
    for (const f of [`${b.hex}.chunks`, b.hex]) {
      try {
        unlinkSync(join(dir, f));
      } catch {
        // someone else trimmed it
      }
    }
    total -= b.bytes;
    removed.push(b.hex);
  }
  return { removed, bytes: total };
}
