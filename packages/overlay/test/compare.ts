/**
 * Snapshots of a whole tree — from a kernel mount through node:fs, or from our Overlay through
 * its API — and the list of differences between two snapshots.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Overlay } from '../src/index.js';
import { dumpXattrs } from './xattr-dump.js';

export interface EntryInfo {
  type: string;
  mode: string;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  rdev: number;
  /** Symlink target, latin1. */
  target?: string;
  /** sha256 of a regular file's content. */
  content?: string;
  /** Visible xattrs except overlayfs' own and security.*, name → hex value, sorted by name. */
  xattrs: Record<string, string>;
  /** Directory: child names (latin1), sorted. */
  children?: string[];
  /** st_ino: compared only as "which entries share one" (hard links), never by value. */
  ino: bigint;
}

/** Path (latin1, "" = root, no leading slash) → entry. */
export type Snapshot = Map<string, EntryInfo>;

const TYPES: Record<number, string> = {
  0o140000: 'socket',
  0o120000: 'symlink',
  0o100000: 'file',
  0o060000: 'blockdev',
  0o040000: 'dir',
  0o020000: 'chardev',
  0o010000: 'fifo',
};

function typeOf(mode: number): string {
  return TYPES[mode & 0o170000] ?? `unknown(${(mode & 0o170000).toString(8)})`;
}

function shownXattr(name: string): boolean {
  return !/^(trusted|user)\.overlay\./.test(name) && !name.startsWith('security.');
}

function xattrRecord(entries: Iterable<[string, Buffer]>): Record<string, string> {
  const list = [...entries].filter(([n]) => shownXattr(n)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(list.map(([n, v]) => [n, v.toString('hex')]));
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** The kernel's view of a mounted tree. */
export function snapshotKernel(mountpoint: string): Snapshot {
  const xattrs = dumpXattrs(mountpoint);
  const snap: Snapshot = new Map();
  const visit = (rel: string): void => {
    const abs = Buffer.from(rel === '' ? mountpoint : `${mountpoint}/${rel}`, 'latin1');
    const st = lstatSync(abs, { bigint: true });
    const mode = Number(st.mode);
    const info: EntryInfo = {
      type: typeOf(mode),
      mode: mode.toString(8),
      nlink: Number(st.nlink),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: Number(st.size),
      mtime: Number(st.mtimeMs / 1000n),
      rdev: Number(st.rdev),
      xattrs: xattrRecord(xattrs.get(abs.toString('latin1')) ?? new Map()),
      ino: st.ino,
    };
    if (info.type === 'symlink') info.target = readlinkSync(abs, { encoding: 'buffer' }).toString('latin1');
    if (info.type === 'file') info.content = sha(readFileSync(abs));
    snap.set(rel, info);
    if (info.type === 'dir') {
      const names = readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare);
      info.children = names.map((n) => n.toString('latin1'));
      for (const n of info.children) visit(join(rel, n));
    }
  };
  visit('');
  return snap;
}

/**
 * Our overlay's view, walked with readdir. Along the way every entry is cross-checked against
 * lookup, getattr and resolve (problems land in `issues`), and files are read in odd-sized
 * chunks as well as in one piece.
 */
export function snapshotOverlay(ov: Overlay): { snap: Snapshot; issues: string[]; ids: Map<string, bigint> } {
  const snap: Snapshot = new Map();
  const ids = new Map<string, bigint>();
  const issues: string[] = [];
  const visit = (rel: string, id: bigint): void => {
    ids.set(rel, id);
    const a = ov.getattr(id);
    const type = typeOf(a.mode);
    const info: EntryInfo = {
      type,
      mode: a.mode.toString(8),
      nlink: a.nlink,
      uid: a.uid,
      gid: a.gid,
      size: a.size,
      mtime: a.mtime,
      rdev: a.rdev,
      xattrs: xattrRecord(ov.listxattr(id).map((n): [string, Buffer] => {
        const v = ov.getxattr(id, n);
        if (v === undefined) issues.push(`${rel}: listxattr names ${n.toString('latin1')} but getxattr has no value`);
        return [n.toString('latin1'), v ?? Buffer.alloc(0)];
      })),
      ino: a.ino,
    };
    if (a.ino !== id) issues.push(`${rel}: ino ${a.ino} differs from id ${id}`);
    if (type === 'symlink') info.target = ov.readlink(id).toString('latin1');
    if (type === 'file') {
      const whole = ov.read(id, 0, a.size + 100);
      const parts: Buffer[] = [];
      for (let pos = 0; ; ) {
        const chunk = ov.read(id, pos, 4093);
        if (chunk.length === 0) break;
        parts.push(chunk);
        pos += chunk.length;
      }
      if (!Buffer.concat(parts).equals(whole)) issues.push(`${rel}: chunked reads differ from one read`);
      if (whole.length !== a.size) issues.push(`${rel}: read ${whole.length} bytes, size says ${a.size}`);
      info.content = sha(whole);
    }
    snap.set(rel, info);
    if (type === 'dir') {
      const entries = ov.readdir(id);
      info.children = entries.map((e) => e.name.toString('latin1'));
      for (const e of entries) {
        const path = join(rel, e.name.toString('latin1'));
        const looked = ov.lookup(id, e.name);
        if (looked === undefined) issues.push(`${path}: listed but lookup finds nothing`);
        else if (looked.id !== e.id) issues.push(`${path}: readdir id ${e.id} but lookup id ${looked.id}`);
        const viaGetattr = ov.getattr(e.id);
        if (JSON.stringify(viaGetattr, big) !== JSON.stringify(e.attr, big)) {
          issues.push(`${path}: readdir attr ${JSON.stringify(e.attr, big)} but getattr ${JSON.stringify(viaGetattr, big)}`);
        }
        if (ov.resolve(Buffer.from(path, 'latin1')) !== e.id) issues.push(`${path}: resolve gives another id`);
        visit(path, e.id);
      }
    }
  };
  visit('', ov.rootId);
  // Directories are never hard links: each must have its own id.
  const dirIds = new Map<bigint, string>();
  for (const [path, info] of snap) {
    if (info.type !== 'dir') continue;
    const other = dirIds.get(info.ino);
    if (other !== undefined) issues.push(`directories ${other} and ${path} share id ${info.ino}`);
    dirIds.set(info.ino, path);
  }
  return { snap, issues, ids };
}

function big(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

/** Groups of non-directory paths sharing an inode number, as sorted strings. */
function linkGroups(snap: Snapshot): string[] {
  const byIno = new Map<bigint, string[]>();
  for (const [path, info] of snap) {
    if (info.type === 'dir') continue;
    byIno.set(info.ino, [...(byIno.get(info.ino) ?? []), path]);
  }
  return [...byIno.values()]
    .filter((g) => g.length > 1)
    .map((g) => g.sort().join(' = '))
    .sort();
}

/** Every difference between the expected (kernel) and actual (ours) snapshots, one line each. */
export function diffSnapshots(expected: Snapshot, actual: Snapshot): string[] {
  const out: string[] = [];
  for (const [path, e] of expected) {
    const a = actual.get(path);
    if (a === undefined) {
      out.push(`/${path}: missing in ours (kernel has ${e.type})`);
      continue;
    }
    for (const k of ['type', 'mode', 'nlink', 'uid', 'gid', 'size', 'mtime', 'rdev', 'target', 'content'] as const) {
      if (e[k] !== a[k]) out.push(`/${path}: ${k} kernel=${String(e[k])} ours=${String(a[k])}`);
    }
    if (JSON.stringify(e.xattrs) !== JSON.stringify(a.xattrs)) {
      out.push(`/${path}: xattrs kernel=${JSON.stringify(e.xattrs)} ours=${JSON.stringify(a.xattrs)}`);
    }
    if (JSON.stringify(e.children) !== JSON.stringify(a.children)) {
      out.push(`/${path}: children kernel=${JSON.stringify(e.children)} ours=${JSON.stringify(a.children)}`);
    }
  }
  for (const path of actual.keys()) if (!expected.has(path)) out.push(`/${path}: only in ours`);
  const ek = linkGroups(expected);
  const ak = linkGroups(actual);
  if (JSON.stringify(ek) !== JSON.stringify(ak)) out.push(`hard links kernel=${JSON.stringify(ek)} ours=${JSON.stringify(ak)}`);
  return out;
}

/**
 * Walk the tree again with lookups only, on an overlay that caches no listings (so lookups take
 * their own path, not the cached listing): every entry of `snap` must be found with the same
 * attributes, and each name in `probe(dirPath)` (say, every name any layer holds there, with
 * and without `.wh.`) must be found exactly when the listing shows it. Directories are listed
 * too, with the stacks that lookup recorded.
 */
export function checkLookups(ov: Overlay, snap: Snapshot, expectedIds: Map<string, bigint>, probe: (dir: string) => Buffer[]): string[] {
  const issues: string[] = [];
  const paths = [...snap.keys()].sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1));
  const ids = new Map<string, bigint>([['', ov.rootId]]);
  for (const path of paths) {
    const info = snap.get(path)!;
    if (path !== '') {
      const slash = path.lastIndexOf('/');
      const parent = ids.get(slash < 0 ? '' : path.slice(0, slash));
      if (parent === undefined) continue;
      const e = ov.lookup(parent, Buffer.from(path.slice(slash + 1), 'latin1'));
      if (e === undefined) {
        issues.push(`/${path}: lookup finds nothing`);
        continue;
      }
      ids.set(path, e.id);
      if (e.id !== expectedIds.get(path)) issues.push(`/${path}: lookup id ${e.id}, readdir id ${expectedIds.get(path)}`);
      for (const k of ['mode', 'nlink', 'uid', 'gid', 'size', 'mtime', 'rdev'] as const) {
        const got = k === 'mode' ? e.attr.mode.toString(8) : e.attr[k];
        if (got !== info[k]) issues.push(`/${path}: lookup ${k}=${got}, listing ${info[k]}`);
      }
    }
    if (info.type === 'dir') {
      const id = ids.get(path)!;
      const listed = ov.readdir(id).map((e) => e.name.toString('latin1'));
      if (JSON.stringify(listed) !== JSON.stringify(info.children)) {
        issues.push(`/${path}: listing after lookup ${JSON.stringify(listed)}, before ${JSON.stringify(info.children)}`);
      }
      for (const name of probe(path)) {
        const shown = info.children!.includes(name.toString('latin1'));
        const found = ov.lookup(id, name) !== undefined;
        if (shown !== found) issues.push(`/${join(path, name.toString('latin1'))}: listed=${shown} but lookup found=${found}`);
      }
    }
  }
  return issues;
}

/** Every name any layer holds in directory `rel`, plus the name each `.wh.NAME` refers to. */
export function layerNames(dirs: string[]): (rel: string) => Buffer[] {
  return (rel) => {
    const out = new Map<string, Buffer>();
    for (const d of dirs) {
      let names: Buffer[] = [];
      try {
        names = readdirSync(Buffer.from(rel === '' ? d : `${d}/${rel}`, 'latin1'), { encoding: 'buffer' });
      } catch {
        continue;
      }
      for (const n of names) {
        out.set(n.toString('latin1'), n);
        if (n.subarray(0, 4).toString() === '.wh.' && n.length > 4) out.set(n.subarray(4).toString('latin1'), n.subarray(4));
      }
    }
    return [...out.values()];
  };
}

