/**
 * A Snapshot (test/lib/snapshot.ts) read through OUR readers (squashfs, erofs: any ImageTree), so
 * it can be compared with snapshots of the source tree, the kernel's loop mount of the image and
 * unsquashfs / fsck.erofs output.
 */
import { createHash } from 'node:crypto';
import { deviceNumbers, walkTree, type ImageTree, type TreeNode } from '@atomfs/tree';
import { childKey, makeDev, nameToKey, type EntrySnap, type Snapshot } from './lib/index.js';

/** xattrs the source tree and the kernel's mount do not agree on (LSM labels, ACLs). */
const HIDDEN_XATTRS = /^(security|system)\./;

export function snapshotTree<N extends TreeNode>(tree: ImageTree<N>): Snapshot {
  const snap: Snapshot = new Map();
  const keys = new Map<string, string>();
  const groups = new Map<number, string[]>();
  for (const e of walkTree(tree, '/')) {
    // Keys are built from raw name bytes exactly as snapshotDir builds them.
    const parent = e.depth === 0 ? '' : keys.get(parentPath(e.pathBuffer))!;
    const name = e.pathBuffer.subarray(e.pathBuffer.lastIndexOf(0x2f) + 1);
    const key = e.depth === 0 ? '/' : childKey(parent, name);
    keys.set(e.pathBuffer.toString('latin1'), key);
    const { node, attr: a } = e;
    const entry: EntrySnap = {
      path: key,
      type: node.kind,
      mode: a.mode,
      uid: a.uid,
      gid: a.gid,
      size: a.size,
      mtime: a.mtime,
      xattrs: Object.fromEntries(tree.xattrs(node).filter((x) => !HIDDEN_XATTRS.test(x.name.toString('latin1'))).map((x) => [x.name.toString('latin1'), x.value.toString('hex')])),
      nlink: a.nlink,
    };
    if (node.kind === 'block' || node.kind === 'char') {
      const { major, minor } = deviceNumbers(a.rdev);
      entry.rdev = makeDev(major, minor);
    }
    if (node.kind === 'symlink') entry.target = nameToKey(tree.readlink(node));
    if (node.kind === 'file') entry.sha256 = fileDigest(tree, node, a.size);
    if (node.kind !== 'dir' && a.nlink > 1) {
      const g = groups.get(tree.ref(node)) ?? [];
      g.push(key);
      groups.set(tree.ref(node), g);
    }
    snap.set(key, entry);
  }
  for (const names of groups.values()) {
    const group = [...names].sort()[0]!;
    for (const k of names) snap.get(k)!.linkGroup = group;
  }
  return snap;
}

/** SHA-256 of a file read a MiB at a time through the reader's readInto: a 4.5 GiB sparse file never sits in memory. */
function fileDigest<N extends TreeNode>(tree: ImageTree<N>, file: N, size: number): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.max(tree.blockSize, 1 << 20));
  for (let pos = 0; pos < size; ) {
    const n = tree.readInto(file, pos, Math.min(buf.length, size - pos), buf);
    if (n <= 0) throw new Error(`short read at ${pos} of ${size}`);
    h.update(buf.subarray(0, n));
    pos += n;
  }
  return h.digest('hex');
}

function parentPath(p: Buffer): string {
  const cut = p.lastIndexOf(0x2f);
  return (cut === 0 ? p.subarray(0, 1) : p.subarray(0, cut)).toString('latin1');
}
