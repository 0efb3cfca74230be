/**
 * Ground truth: a snapshot of a real directory tree as the kernel shows it (lstat, readlink,
 * readdir, xattrs via getfattr, content via sha256). The same function reads the source tree, a
 * kernel loop mount, unsquashfs output, a kernel overlay mount and our FUSE mount, so every
 * comparison is "independent tool vs. us" and never "our code vs. our code".
 */
import { createHash } from 'node:crypto';
import { promises as fsp, type BigIntStats } from 'node:fs';
import { resolve } from 'node:path';
import { childKey, keyToPath, nameToKey } from './names.js';
import { dumpXattrs, type XattrMap } from './xattrs.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char' | 'block';

export interface EntrySnap {
  /** "/" for the root, "/a/b" below it; names encoded with names.ts nameToKey (lossless). */
  path: string;
  type: EntryType;
  /** st_mode including the type bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Byte size of files and symlinks (target length); recorded for dirs but never compared. */
  size: number;
  /** Whole seconds (floor). */
  mtime: number;
  /** glibc dev_t of char/block devices; compare with devMajor/devMinor. */
  rdev?: number;
  /** Symlink target, encoded like names (nameToKey) because targets are bytes too. */
  target?: string;
  /** name → lowercase hex value; security.* and system.* excluded. */
  xattrs: Record<string, string>;
  /** sha256 hex of regular file content (absent when hashing is off). */
  sha256?: string;
  nlink: number;
  /** For non-directories with nlink > 1: the smallest path key among the names of the inode. */
  linkGroup?: string;
}

export type Snapshot = Map<string, EntrySnap>;

export interface SnapshotOptions {
  /** Hash regular file contents (default true). */
  hash?: boolean;
  /** Read xattrs with getfattr (default true). When false every entry has `xattrs: {}`. */
  xattrs?: boolean;
}

export class SnapshotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export function devMajor(rdev: number): number {
  const d = BigInt(rdev);
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
}
export function devMinor(rdev: number): number {
  const d = BigInt(rdev);
  return Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
}
/** glibc makedev. */
export function makeDev(major: number, minor: number): number {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return Number(((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n));
}

function typeOf(st: BigIntStats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  throw new SnapshotError(`unknown file type, mode ${st.mode.toString(8)}`);
}

function floorSeconds(ns: bigint): number {
  let s = ns / 1_000_000_000n;
  if (ns < 0n && ns % 1_000_000_000n !== 0n) s -= 1n;
  return Number(s);
}

/** Streaming sha256 of a regular file (1 MiB reads, constant memory). */
export async function hashFile(path: Buffer | string): Promise<string> {
  const h = createHash('sha256');
  const fh = await fsp.open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** Snapshot the tree at `root` (not following symlinks; the root itself must be a directory). */
export async function snapshotDir(root: string, opts: SnapshotOptions = {}): Promise<Snapshot> {
  const abs = resolve(root);
  const rootBytes = Buffer.from(abs, 'utf8');
  const xattrsP = opts.xattrs === false ? Promise.resolve(new Map<string, XattrMap>()) : dumpXattrs(abs);
  // Awaited below; this only keeps a getfattr failure from being "unhandled" if the walk throws first.
  xattrsP.catch(() => undefined);
  const snap: Snapshot = new Map();
  const inodes = new Map<string, string[]>();
  const queue: string[] = ['/'];
  while (queue.length > 0) {
    const key = queue.pop()!;
    const p = keyToPath(rootBytes, key);
    const st = await fsp.lstat(p, { bigint: true });
    const type = typeOf(st);
    if (key === '/' && type !== 'dir') throw new SnapshotError(`${abs} is not a directory`);
    const e: EntrySnap = {
      path: key,
      type,
      mode: Number(st.mode),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: Number(st.size),
      mtime: floorSeconds(st.mtimeNs),
      xattrs: {},
      nlink: Number(st.nlink),
    };
    if (type === 'char' || type === 'block') e.rdev = Number(st.rdev);
    if (type === 'symlink') e.target = nameToKey(await fsp.readlink(p, { encoding: 'buffer' }));
    if (type === 'file' && opts.hash !== false) e.sha256 = await hashFile(p);
    if (type !== 'dir' && e.nlink > 1) {
      const id = `${st.dev}:${st.ino}`;
      const names = inodes.get(id);
      if (names) names.push(key);
      else inodes.set(id, [key]);
    }
    snap.set(key, e);
    if (type === 'dir') {
      const names = await fsp.readdir(p, { encoding: 'buffer' });
      for (const n of names) queue.push(childKey(key, n));
    }
  }
  for (const names of inodes.values()) {
    const group = [...names].sort()[0]!;
    for (const k of names) snap.get(k)!.linkGroup = group;
  }
  for (const [k, x] of await xattrsP) {
    const e = snap.get(k);
    if (!e) throw new SnapshotError(`getfattr reported ${k}, which the directory walk did not find`);
    e.xattrs = x;
  }
  return snap;
}

export type SnapField =
  | 'type'
  | 'mode'
  | 'uid'
  | 'gid'
  | 'size'
  | 'mtime'
  | 'rdev'
  | 'target'
  | 'xattrs'
  | 'sha256'
  | 'nlink'
  /** Directory link counts only (overlayfs reports 1 for merged directories). */
  | 'dirNlink'
  | 'linkGroup';

export interface CompareOptions {
  ignore?: readonly SnapField[];
  /** Entries (path keys) to leave out on both sides. */
  ignorePaths?: (key: string) => boolean;
  /** Compare only xattrs whose name passes (default: all in the snapshot). */
  xattrFilter?: (name: string) => boolean;
  /** Stop listing after this many differences (default 200). */
  maxDiffs?: number;
}

function oct(mode: number): string {
  return '0' + mode.toString(8);
}
function shortHex(h: string | undefined): string {
  if (h === undefined) return '(absent)';
  return h.length > 64 ? `0x${h.slice(0, 64)}…(${h.length / 2} bytes)` : `0x${h}`;
}

/** Human-readable differences between two snapshots; empty when equal. */
export function compareSnapshots(expected: Snapshot, actual: Snapshot, opts: CompareOptions = {}): string[] {
  const ignore = new Set<SnapField>(opts.ignore ?? []);
  const skip = opts.ignorePaths ?? (() => false);
  const xf = opts.xattrFilter ?? (() => true);
  const max = opts.maxDiffs ?? 200;
  const diffs: string[] = [];
  let total = 0;
  const add = (s: string): void => {
    total++;
    if (diffs.length < max) diffs.push(s);
  };
  const keys = [...new Set([...expected.keys(), ...actual.keys()])].sort();
  for (const k of keys) {
    if (skip(k)) continue;
    const e = expected.get(k);
    const a = actual.get(k);
    if (!a) {
      add(`${k}: missing (expected ${e!.type})`);
      continue;
    }
    if (!e) {
      add(`${k}: unexpected ${a.type}`);
      continue;
    }
    if (e.type !== a.type) {
      if (!ignore.has('type')) add(`${k}: type expected ${e.type}, got ${a.type}`);
      continue;
    }
    const field = (f: SnapField, ev: unknown, av: unknown, show: (v: never) => string = String): void => {
      if (!ignore.has(f) && ev !== av) add(`${k}: ${f} expected ${show(ev as never)}, got ${show(av as never)}`);
    };
    field('mode', e.mode, a.mode, oct);
    field('uid', e.uid, a.uid);
    field('gid', e.gid, a.gid);
    if (e.type !== 'dir') field('size', e.size, a.size);
    field('mtime', e.mtime, a.mtime);
    if (e.type === 'dir') {
      if (!ignore.has('dirNlink')) field('nlink', e.nlink, a.nlink);
    } else {
      field('nlink', e.nlink, a.nlink);
      field('linkGroup', e.linkGroup, a.linkGroup, (v: string | undefined) => v ?? '(none)');
    }
    if (e.type === 'char' || e.type === 'block') {
      const show = (r: number | undefined): string => (r === undefined ? '(absent)' : `${devMajor(r)}:${devMinor(r)}`);
      field('rdev', show(e.rdev), show(a.rdev));
    }
    if (e.type === 'symlink') field('target', e.target, a.target, (v: string | undefined) => JSON.stringify(v));
    if (e.type === 'file') field('sha256', e.sha256, a.sha256, (v: string | undefined) => v ?? '(absent)');
    if (!ignore.has('xattrs')) {
      const names = [...new Set([...Object.keys(e.xattrs), ...Object.keys(a.xattrs)])].filter(xf).sort();
      for (const n of names) {
        const ev = e.xattrs[n];
        const av = a.xattrs[n];
        if (ev !== av) add(`${k}: xattr ${n} expected ${shortHex(ev)}, got ${shortHex(av)}`);
      }
    }
  }
  if (total > diffs.length) diffs.push(`… and ${total - diffs.length} more differences`);
  return diffs;
}

/** A copy of `snap` with `fn` applied to a clone of every entry (returning undefined drops it). */
export function mapSnapshot(snap: Snapshot, fn: (e: EntrySnap) => EntrySnap | undefined): Snapshot {
  const out: Snapshot = new Map();
  for (const [k, e] of snap) {
    const r = fn({ ...e, xattrs: { ...e.xattrs } });
    if (r) out.set(k, r);
  }
  return out;
}

/** Count entries per type (for self-checks and reports). */
export function countTypes(snap: Snapshot): Record<EntryType, number> {
  const c: Record<EntryType, number> = { file: 0, dir: 0, symlink: 0, fifo: 0, socket: 0, char: 0, block: 0 };
  for (const e of snap.values()) c[e.type]++;
  return c;
}
