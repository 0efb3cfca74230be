import type { ImageTree, NodeKind, TreeEntry } from '@atomfs/tree';
import type { Erofs } from './erofs.js';
import { CorruptImageError } from './errors.js';
import type { ErofsInode } from './inode.js';

/** EROFS_FT_* directory entry types 1..7 (0 is "unknown": the inode says). */
const KIND_OF_FT: readonly (NodeKind | undefined)[] = [undefined, 'file', 'dir', 'char', 'block', 'fifo', 'socket', 'symlink'];

/** The image as @atomfs/tree's format-neutral code (path API, walk, extraction) reads it. */
export function erofsTree(fs: Erofs): ImageTree<ErofsInode> {
  return {
    root: () => fs.root(),
    lookup: (dir, name) => fs.lookup(dir, name),
    readdir: (dir): TreeEntry[] => fs.readdir(dir).map((e) => ({ name: e.name, kind: KIND_OF_FT[e.fileType] ?? fs.inode(e.nid).kind, ref: e.nid })),
    node: (nid) => fs.inode(nid),
    ref: (inode) => inode.nid,
    attr: (inode) => fs.attr(inode),
    readlink: (link) => fs.readlink(link),
    readInto: (file, position, length, dst) => fs.readInto(file, position, length, dst),
    xattrs: (inode) => fs.xattrs(inode),
    // Getters: Erofs makes its path API before its superblock is read.
    get blockSize() {
      return fs.superblock.blockSize;
    },
    get inodeCount() {
      return fs.superblock.inodeCount;
    },
    corrupt: (what) => new CorruptImageError(what, undefined),
  };
}
