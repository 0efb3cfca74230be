import type { Attr } from '@atomfs/fuse';

/** What our filesystems know of an entry (squashfs InodeAttr, overlay NodeAttr and OverlayAttr agree on it). */
export interface PlainAttr {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  rdev: number;
  /** st_blocks (512-byte units) when the source knows it (squashfs: as the kernel counts); else size-based. */
  blocks?: number;
  /** mtime's nanoseconds, where the image keeps them (erofs). */
  mtimeNsec?: number;
  /** st_blksize of the entry's own filesystem, where it differs from the mount's default. */
  blksize?: number;
}

/** fuse_attr from image attributes: squashfs keeps only mtime, so atime and ctime mirror it (as the kernel shows). */
export function toFuseAttr(a: Omit<PlainAttr, 'ino'>, ino: bigint, blksize: number): Attr {
  return {
    ino,
    size: a.size,
    blocks: a.blocks ?? Math.ceil(a.size / 512),
    atime: a.mtime,
    mtime: a.mtime,
    ctime: a.mtime,
    atimensec: a.mtimeNsec ?? 0,
    mtimensec: a.mtimeNsec ?? 0,
    ctimensec: a.mtimeNsec ?? 0,
    mode: a.mode,
    nlink: a.nlink,
    uid: a.uid,
    gid: a.gid,
    rdev: a.rdev,
    blksize: a.blksize ?? blksize,
  };
}
