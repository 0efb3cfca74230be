/**
 * What the overlay needs of one read-only layer. A squashfs image satisfies it (the atomfs
 * package adapts @atomfs/squashfs to it); tests can back it with a real directory or memory.
 * The overlay knows nothing of FUSE and nothing of squashfs: only this interface.
 *
 * All calls are synchronous: layers are local images read with pread, and the FUSE server answers
 * each request on one thread from start to end.
 */

import type { NodeAttr } from '@atomfs/tree';

/** Attributes of one entry, as lstat(2) reports them: the readers' one attribute type. */
export type { NodeAttr };

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
