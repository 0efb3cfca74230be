import type { Attr } from '@atomfs/fuse';
import type { NodeAttr } from '@atomfs/tree';

/** fuse_attr from an entry's attributes: images keep one time, so atime and ctime mirror mtime (as the kernel shows). */
export function toFuseAttr(a: Omit<NodeAttr, 'ino'>, ino: bigint): Attr {
  return {
    ino,
    size: a.size,
    blocks: a.blocks,
    atime: a.mtime,
    mtime: a.mtime,
    ctime: a.mtime,
    atimensec: a.mtimeNsec,
    mtimensec: a.mtimeNsec,
    ctimensec: a.mtimeNsec,
    mode: a.mode,
    nlink: a.nlink,
    uid: a.uid,
    gid: a.gid,
    rdev: a.rdev,
    blksize: a.blksize,
  };
}
