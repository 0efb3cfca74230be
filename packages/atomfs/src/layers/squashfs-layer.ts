import type { Layer, LayerDirEntry, NodeAttr } from '@atomfs/overlay';
import type { Inode, SquashFS } from '@atomfs/squashfs';

/**
 * One squashfs image seen as an overlay layer. Keys are inode references (48-bit
 * block<<16|offset), so any thread that opened the same image can find a node again from its key,
 * and hard links (one inode, several entries) share a key.
 */
export class SquashfsLayer implements Layer<Inode> {
  /** Reused for multi-block reads when the caller consumes each result before the next read. */
  private scratch: Buffer | undefined;

  constructor(
    readonly image: SquashFS,
    options: { reuseReadBuffer?: boolean } = {},
  ) {
    if (options.reuseReadBuffer === true) this.scratch = Buffer.alloc(0);
  }

  root(): Inode {
    return this.image.root();
  }
  lookup(dir: Inode, name: Buffer): Inode | undefined {
    return this.image.lookup(dir, name);
  }
  getattr(node: Inode): NodeAttr {
    return this.image.attr(node);
  }
  readdir(dir: Inode): LayerDirEntry<Inode>[] {
    return this.image.readdir(dir).map((e) => ({ name: e.name, node: this.image.inode(e.ref) }));
  }
  readlink(node: Inode): Buffer {
    return this.image.readlink(node);
  }
  listxattr(node: Inode): Buffer[] {
    return this.image.xattrList(node).map((x) => x.name);
  }
  xattrsSupported(node: Inode): boolean {
    return this.image.xattrsSupported(node);
  }
  seek(node: Inode, offset: number, whence: 'data' | 'hole'): number | undefined {
    return this.image.seek(node, offset, whence);
  }
  getxattr(node: Inode, name: Buffer): Buffer | undefined {
    return this.image.getxattr(node, name);
  }
  read(node: Inode, position: number, length: number): Buffer {
    if (this.scratch === undefined) return this.image.read(node, position, length);
    if (this.scratch.length < length) this.scratch = Buffer.allocUnsafe(length);
    return this.scratch.subarray(0, this.image.readInto(node, position, length, this.scratch));
  }
  key(node: Inode): number {
    return node.ref;
  }
  fromKey(key: number): Inode {
    return this.image.inode(key);
  }
}
