/**
 * A Layer over a real directory, for tests: lstat/readdir/readlink/read through node:fs, xattrs
 * from one getfattr dump taken at construction (the directory must not change afterwards).
 * key = st_ino; fromKey looks the inode up in the paths seen so far.
 */
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import type { Layer, LayerDirEntry, NodeAttr } from '../src/index.js';
import { dumpXattrs, type XattrMap } from './xattr-dump.js';

export interface DirNode {
  /** Absolute path bytes (names need not be UTF-8). */
  readonly path: Buffer;
  readonly ino: number;
}

export class DirLayer implements Layer<DirNode> {
  private readonly byIno = new Map<number, Buffer>();
  private readonly xattrs: XattrMap;
  private readonly rootNode: DirNode;
  private walked = false;

  constructor(readonly dir: string) {
    this.xattrs = dumpXattrs(dir);
    this.rootNode = this.nodeAt(Buffer.from(dir));
  }

  private nodeAt(path: Buffer): DirNode {
    const st = lstatSync(path);
    this.byIno.set(st.ino, path);
    return { path, ino: st.ino };
  }

  root(): DirNode {
    return this.rootNode;
  }

  lookup(dir: DirNode, name: Buffer): DirNode | undefined {
    try {
      return this.nodeAt(Buffer.concat([dir.path, Buffer.from('/'), name]));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  getattr(node: DirNode): NodeAttr {
    const st = lstatSync(node.path, { bigint: true });
    return {
      ino: Number(st.ino),
      mode: Number(st.mode),
      nlink: Number(st.nlink),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: Number(st.size),
      mtime: Number(st.mtimeNs / 1_000_000_000n),
      mtimeNsec: Number(st.mtimeNs % 1_000_000_000n),
      rdev: Number(st.rdev),
      blocks: Number(st.blocks),
      blksize: Number(st.blksize),
    };
  }

  readdir(dir: DirNode): LayerDirEntry<DirNode>[] {
    const names = readdirSync(dir.path, { encoding: 'buffer' });
    names.sort(Buffer.compare);
    return names.map((name) => ({ name, node: this.nodeAt(Buffer.concat([dir.path, Buffer.from('/'), name])) }));
  }

  readlink(node: DirNode): Buffer {
    return readlinkSync(node.path, { encoding: 'buffer' });
  }

  private xattrsOf(node: DirNode): Map<string, Buffer> | undefined {
    return this.xattrs.get(node.path.toString('latin1'));
  }

  listxattr(node: DirNode): Buffer[] {
    return [...(this.xattrsOf(node)?.keys() ?? [])].map((n) => Buffer.from(n, 'latin1'));
  }

  getxattr(node: DirNode, name: Buffer): Buffer | undefined {
    return this.xattrsOf(node)?.get(name.toString('latin1'));
  }

  read(node: DirNode, position: number, length: number): Buffer {
    const fd = openSync(node.path, 'r');
    try {
      const buf = Buffer.alloc(length);
      let got = 0;
      while (got < length) {
        const n = readSync(fd, buf, got, length - got, position + got);
        if (n === 0) break;
        got += n;
      }
      return buf.subarray(0, got);
    } finally {
      closeSync(fd);
    }
  }

  private walk(dir: Buffer): void {
    this.walked = true;
    for (const name of readdirSync(dir, { encoding: 'buffer' })) {
      const path = Buffer.concat([dir, Buffer.from('/'), name]);
      if (this.nodeAt(path) && lstatSync(path).isDirectory()) this.walk(path);
    }
  }

  key(node: DirNode): number {
    return node.ino;
  }

  fromKey(key: number): DirNode {
    // A fresh instance (as on another thread) has seen no paths yet: learn the whole tree once.
    if (!this.byIno.has(key) && !this.walked) this.walk(this.rootNode.path);
    const path = this.byIno.get(key);
    if (path === undefined) throw new Error(`DirLayer ${this.dir}: no path seen for inode ${key}`);
    return { path, ino: key };
  }
}
