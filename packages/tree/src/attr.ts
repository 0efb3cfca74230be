/** The seven file types an image entry can have. */
export type NodeKind = 'dir' | 'file' | 'symlink' | 'block' | 'char' | 'fifo' | 'socket';

/** S_IFMT: the file-type bits of st_mode. */
export const S_IFMT = 0o170000;

/** st_mode file-type bits of each kind. */
export const KIND_MODE: Readonly<Record<NodeKind, number>> = {
  dir: 0o040000,
  file: 0o100000,
  symlink: 0o120000,
  block: 0o060000,
  char: 0o020000,
  fifo: 0o010000,
  socket: 0o140000,
};

/** lstat(2)-shaped attributes of an entry, as the kernel's own mount of the image reports them. */
export interface NodeAttr {
  ino: number;
  /** File-type and permission bits, like st_mode. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  /** Bytes for files, target length for symlinks, the format's listing size for directories. */
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Nanoseconds of mtime (0 where the format keeps whole seconds, as squashfs does). */
  mtimeNsec: number;
  /** Device number of block/char devices, Linux new_encode_dev encoding; 0 otherwise. */
  rdev: number;
  /** st_blocks (512-byte units). */
  blocks: number;
  blksize: number;
}

/** Major and minor of a Linux new_encode_dev device number. */
export function deviceNumbers(rdev: number): { major: number; minor: number } {
  return { major: (rdev >> 8) & 0xfff, minor: (rdev & 0xff) | ((rdev >>> 12) & 0xfff00) };
}
