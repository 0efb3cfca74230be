import type { ImageTree } from '@atomfs/tree';
import { CorruptImageError } from './errors.js';
import type { Inode } from './inode.js';
import type { SquashFS } from './squashfs.js';

/** The image as @atomfs/tree's format-neutral code (path API, walk, extraction) reads it. */
export function squashfsTree(fs: SquashFS): ImageTree<Inode> {
  return {
    root: () => fs.root(),
    lookup: (dir, name) => fs.lookup(dir, name),
    // Its DirEntries are TreeEntries already (name, kind, ref): no copy per entry.
    readdir: (dir) => fs.readdir(dir),
    node: (ref) => fs.inode(ref),
    ref: (inode) => inode.ref,
    attr: (inode) => fs.attr(inode),
    readlink: (link) => fs.readlink(link),
    readInto: (file, position, length, dst) => fs.readInto(file, position, length, dst),
    xattrs: (inode) => fs.xattrList(inode),
    // Getters: SquashFS makes its path API before its superblock is read.
    get blockSize() {
      return fs.superblock.blockSize;
    },
    get inodeCount() {
      return fs.superblock.inodeCount;
    },
    corrupt: (what) => new CorruptImageError(what, undefined),
  };
}
