import type { Erofs, ErofsInode } from '@atomfs/erofs';
import type { Layer, LayerDirEntry, NodeAttr } from '@atomfs/overlay';

/** Keys must fit the overlay's 48 bits (it packs the layer index above them). */
const MAX_KEY = 2 ** 48;

/**
 * One erofs image seen as an overlay layer. Keys are nids (an inode's slot number), so any
 * thread that opened the same image finds a node again from its key, and hard links (one inode,
 * several entries) share a key.
 */
export class ErofsLayer implements Layer<ErofsInode> {
  /** Reused for reads when the caller consumes each result before the next read. */
  private scratch: Buffer | undefined;

  constructor(
    readonly image: Erofs,
    options: { reuseReadBuffer?: boolean } = {},
  ) {
    if (options.reuseReadBuffer === true) this.scratch = Buffer.alloc(0);
  }

  root(): ErofsInode {
    return this.image.root();
  }
  lookup(dir: ErofsInode, name: Buffer): ErofsInode | undefined {
    return this.image.lookup(dir, name);
  }
  getattr(node: ErofsInode): NodeAttr {
    return this.image.attr(node);
  }
  readdir(dir: ErofsInode): LayerDirEntry<ErofsInode>[] {
    return this.image.readdir(dir).map((e) => ({ name: e.name, node: this.image.inode(e.nid) }));
  }
  readlink(node: ErofsInode): Buffer {
    return this.image.readlink(node);
  }
  listxattr(node: ErofsInode): Buffer[] {
    return this.image.xattrs(node).map((x) => x.name);
  }
  getxattr(node: ErofsInode, name: Buffer): Buffer | undefined {
    return this.image.getxattr(node, name);
  }
  read(node: ErofsInode, position: number, length: number): Buffer {
    if (this.scratch === undefined) return this.image.read(node, position, length);
    const n = Math.max(0, Math.min(length, node.size - position));
    if (this.scratch.length < n) this.scratch = Buffer.allocUnsafe(n);
    return this.scratch.subarray(0, this.image.readInto(node, position, n, this.scratch));
  }
  key(node: ErofsInode): number {
    if (node.nid >= MAX_KEY) throw new RangeError(`nid ${node.nid} does not fit the overlay's 48-bit keys`);
    return node.nid;
  }
  fromKey(key: number): ErofsInode {
    return this.image.inode(key);
  }
}
