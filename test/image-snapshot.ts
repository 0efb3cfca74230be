/**
 * A Snapshot (test/lib/snapshot.ts) read through OUR squashfs reader, so it can be compared with
 * snapshots of the source tree, the kernel's loop mount and unsquashfs output.
 */
import { createHash } from 'node:crypto';
import { walkTree, type SquashFS } from '@atomfs/squashfs';
import { childKey, makeDev, nameToKey, type EntrySnap, type EntryType, type Snapshot } from './lib/index.js';

const TYPES: Record<string, EntryType> = { dir: 'dir', file: 'file', symlink: 'symlink', fifo: 'fifo', socket: 'socket', char: 'char', block: 'block' };

export function snapshotImage(fs: SquashFS): Snapshot {
  const snap: Snapshot = new Map();
  const keys = new Map<string, string>();
  const groups = new Map<number, string[]>();
  for (const e of walkTree(fs, '/')) {
    // Keys are built from raw name bytes exactly as snapshotDir builds them.
    const parent = e.depth === 0 ? '' : keys.get(parentPath(e.pathBuffer))!;
    const name = e.pathBuffer.subarray(e.pathBuffer.lastIndexOf(0x2f) + 1);
    const key = e.depth === 0 ? '/' : childKey(parent, name);
    keys.set(e.pathBuffer.toString('latin1'), key);
    const i = e.inode;
    const a = fs.attr(i);
    const entry: EntrySnap = {
      path: key,
      type: TYPES[i.kind]!,
      mode: a.mode,
      uid: a.uid,
      gid: a.gid,
      size: a.size,
      mtime: a.mtime,
      xattrs: Object.fromEntries(
        fs
          .xattrList(i)
          .filter((x) => !x.name.toString().startsWith('security.'))
          .map((x) => [x.name.toString('latin1'), x.value.toString('hex')]),
      ),
      nlink: a.nlink,
    };
    if (i.kind === 'block' || i.kind === 'char') entry.rdev = makeDev((i.rdev >> 8) & 0xfff, (i.rdev & 0xff) | ((i.rdev >>> 12) & 0xfff00));
    if (i.kind === 'symlink') entry.target = nameToKey(i.target);
    if (i.kind === 'file') {
      const h = createHash('sha256');
      const bs = fs.superblock.blockSize;
      // Block by block through the public read API: a 4.5 GiB sparse file never sits in memory.
      for (let pos = 0; pos < i.fileSize; pos += bs * 8) h.update(fs.read(i, pos, bs * 8));
      entry.sha256 = h.digest('hex');
    }
    if (i.kind !== 'dir' && a.nlink > 1) {
      const g = groups.get(i.ref) ?? [];
      g.push(key);
      groups.set(i.ref, g);
    }
    snap.set(key, entry);
  }
  for (const names of groups.values()) {
    const group = [...names].sort()[0]!;
    for (const k of names) snap.get(k)!.linkGroup = group;
  }
  return snap;
}

function parentPath(p: Buffer): string {
  const cut = p.lastIndexOf(0x2f);
  return (cut === 0 ? p.subarray(0, 1) : p.subarray(0, cut)).toString('latin1');
}
