/**
 * What the overlay needs of one read-only layer. A squashfs image satisfies it (the atomfs
 * package adapts @atomfs/squashfs to it); tests can back it with a real directory or memory.
 * The overlay knows nothing of FUSE and nothing of squashfs: only this interface.
 *
 * All calls are synchronous: layers are local images read with pread, and the FUSE server answers
 * each request on one thread from start to end.
 */

/** Attributes of one entry, as lstat(2) would report them. */
export interface NodeAttr {
  /** Inode number inside its layer (1-based for squashfs). */
  ino: number;
  /** File type bits (S_IFMT) and permission bits, like st_mode. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  /** Bytes for files, target length for symlinks, listing size for directories. */
  size: number;
  /** Seconds since the epoch (squashfs stores only whole seconds). */
  mtime: number;
  /** Device number for block/char devices, Linux new_encode_dev encoding; 0 otherwise. */
  rdev: number;
  /** st_blocks (512-byte units) when the layer knows it (sparse files count less than their size). */
  blocks?: number;
  /** Nanoseconds of mtime, where the layer keeps them (erofs; squashfs has whole seconds). */
  mtimeNsec?: number;
  /** st_blksize as the kernel's own mount of the layer reports it, where the layer says. */
  blksize?: number;
}

/** One directory entry as a layer lists it (without "." and ".."). */
export interface LayerDirEntry<N> {
  /** Raw name bytes: names need not be UTF-8. */
  name: Buffer;
  node: N;
}

export interface Layer<N> {
  root(): N;
  /** The child called `name` of directory `dir`, or undefined when there is none. */
  lookup(dir: N, name: Buffer): N | undefined;
  getattr(node: N): NodeAttr;
  /** Every entry of a directory, sorted by name bytes. */
  readdir(dir: N): LayerDirEntry<N>[];
  readlink(node: N): Buffer;
  /** Full xattr names ("user.foo", "trusted.overlay.opaque"), in the layer's order. */
  listxattr(node: N): Buffer[];
  /**
   * False when the layer's filesystem answers listxattr on this node with EOPNOTSUPP (the
   * kernel's squashfs does so for some inodes of images without xattrs). Default true.
   */
  xattrsSupported?(node: N): boolean;
  /** The value of one xattr, or undefined when the node has none of that name. */
  getxattr(node: N, name: Buffer): Buffer | undefined;
  /** Up to `length` bytes of a regular file from `position` (short only at end of file). */
  read(node: N, position: number, length: number): Buffer;
  /**
   * lseek(SEEK_DATA / SEEK_HOLE) in a regular file: the next position at or after `offset`
   * (which is inside the file) holding data or starting a hole; undefined when there is no
   * data after it. Default: the whole file is data.
   */
  seek?(node: N, offset: number, whence: 'data' | 'hole'): number | undefined;
  /**
   * A number that identifies the node inside this layer and survives being passed to another
   * thread: `fromKey(key(n))` gives back an equivalent node. Hard links share one key.
   * Must fit in 48 bits (the overlay packs the layer index above it).
   */
  key(node: N): number;
  fromKey(key: number): N;
}
