import type { NodeAttr, NodeKind } from './attr.js';

/** One extended attribute: full name with its prefix ("user.foo"), raw value. */
export interface Xattr {
  name: Buffer;
  value: Buffer;
}

/** One directory entry (never "." or ".."). */
export interface TreeEntry {
  /** Raw name bytes: names need not be UTF-8. */
  name: Buffer;
  kind: NodeKind;
  /** What `node` takes to give the entry's node. */
  ref: number;
}

/** What the path API, the walk and extraction need to know of a node without asking the tree. */
export interface TreeNode {
  readonly kind: NodeKind;
  readonly nlink: number;
}

/**
 * The inode-level read API of one image format, as the format-neutral code here uses it. A
 * reader (squashfs, erofs) implements it with an adapter over its own inode objects; the
 * adapter's calls throw the reader's own typed errors for bad image data.
 */
export interface ImageTree<N extends TreeNode> {
  root(): N;
  /** The child called `name` of directory `dir`, or undefined. */
  lookup(dir: N, name: Buffer): N | undefined;
  /** The entries of a directory, in the image's (name) order. */
  readdir(dir: N): readonly TreeEntry[];
  node(ref: number): N;
  /** A number naming the node in this image: hard links share it (and `node(ref(n))` is `n`). */
  ref(node: N): number;
  attr(node: N): NodeAttr;
  readlink(link: N): Buffer;
  /** Copy up to `length` bytes of a regular file from `position` into `dst`; the count copied. */
  readInto(file: N, position: number, length: number, dst: Buffer): number;
  xattrs(node: N): readonly Xattr[];
  /** The format's data block size: the grain of holes in extracted files and of read streams. */
  readonly blockSize: number;
  /** Inodes in the image (extraction's progress total). */
  readonly inodeCount: number;
  /** The reader's own error for image damage the format-neutral code finds (a directory cycle). */
  corrupt(what: string): Error;
}

/** Fill `dst` with a file's bytes from `position`, all of which the file's size says exist; a short read is damage. */
export function readFully<N extends TreeNode>(tree: ImageTree<N>, file: N, position: number, dst: Buffer): void {
  const n = tree.readInto(file, position, dst.length, dst);
  if (n !== dst.length) throw tree.corrupt(`a file's data ends at ${position + n}, short of the size its inode gives`);
}
