/**
 * A Snapshot (test/lib/snapshot.ts) read through OUR erofs reader, to compare with snapshots of
 * the source tree, the kernel's erofs loop mount and `fsck.erofs --extract` output; and the
 * erofs images the erofs tests use, made by mkfs.erofs (erofs-utils).
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { walkTree, type Erofs } from '@atomfs/erofs';
import { childKey, makeDev, nameToKey, run, trackBackingFile, type EntrySnap, type Snapshot } from './lib/index.js';

export function snapshotErofs(fs: Erofs): Snapshot {
  const snap: Snapshot = new Map();
  const groups = new Map<number, string[]>();
  const keys = new Map<string, string>();
  for (const { path, inode } of walkTree(fs, '/')) {
    const isRoot = path.length === 1;
    const cut = path.lastIndexOf(0x2f);
    const parent = cut === 0 ? '/' : keys.get(path.subarray(0, cut).toString('latin1'))!;
    const key = isRoot ? '/' : childKey(parent, path.subarray(cut + 1));
    keys.set(path.toString('latin1'), key);
    const a = fs.attr(inode);
    const entry: EntrySnap = {
      path: key,
      type: inode.kind,
      mode: a.mode,
      uid: a.uid,
      gid: a.gid,
      size: a.size,
      mtime: a.mtime,
      xattrs: Object.fromEntries(
        fs
          .xattrs(inode)
          .filter((x) => !x.name.toString().startsWith('security.') && !x.name.toString().startsWith('system.'))
          .map((x) => [x.name.toString('latin1'), x.value.toString('hex')]),
      ),
      nlink: a.nlink,
    };
    if (inode.kind === 'block' || inode.kind === 'char') entry.rdev = makeDev((a.rdev >> 8) & 0xfff, (a.rdev & 0xff) | ((a.rdev >>> 12) & 0xfff00));
    if (inode.kind === 'symlink') entry.target = nameToKey(fs.readlink(inode));
    if (inode.kind === 'file') {
      const h = createHash('sha256');
      const step = 1 << 20;
      for (let pos = 0; pos < inode.size; pos += step) h.update(fs.read(inode, pos, step));
      entry.sha256 = h.digest('hex');
    }
    if (inode.kind !== 'dir' && a.nlink > 1) {
      const g = groups.get(inode.nid) ?? [];
      g.push(key);
      groups.set(inode.nid, g);
    }
    snap.set(key, entry);
  }
  for (const names of groups.values()) {
    const group = [...names].sort()[0]!;
    for (const k of names) snap.get(k)!.linkGroup = group;
  }
  return snap;
}

/** erofs-utils 1.5 (Debian 12) fails on a 255-byte name: drop names that long from a tree. */
export function dropLongNames(dir: string | Buffer, limit = 255): number {
  let dropped = 0;
  const base = typeof dir === 'string' ? Buffer.from(dir) : dir;
  for (const name of readdirSync(base, { encoding: 'buffer' })) {
    const p = Buffer.concat([base, Buffer.from('/'), name]);
    if (name.length >= limit) {
      rmSync(p, { recursive: true, force: true });
      dropped++;
    } else if (lstatSync(p).isDirectory()) {
      dropped += dropLongNames(p, limit);
    }
  }
  return dropped;
}

/** mkfs.erofs OPTIONS OUT DIR (quiet); the image is tracked for cleanup. */
export async function mkfsErofs(dir: string, out: string, options: readonly string[]): Promise<string> {
  await run(['mkfs.erofs', '--quiet', ...options, out, dir], { timeoutMs: 600_000 });
  trackBackingFile(out);
  return out;
}

export function erofsImagePath(work: string, name: string): string {
  return join(work, `${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}.erofs`);
}
