/**
 * An in-memory Layer for tests that need content no real filesystem holds (names with '/',
 * duplicate entries, ...) or that count how often the overlay asks the layer.
 */
import type { Layer, LayerDirEntry, NodeAttr } from '../src/index.js';

export interface MemNode {
  key: number;
  mode: number;
  nlink?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  rdev?: number;
  data?: Buffer;
  target?: Buffer;
  xattrs?: Map<string, Buffer>;
  entries?: { name: Buffer; node: MemNode }[];
}

let nextKey = 100;

export function file(data: string | Buffer, extra: Partial<MemNode> = {}): MemNode {
  return { key: nextKey++, mode: 0o100644, data: Buffer.from(data), ...extra };
}
export function symlink(target: string): MemNode {
  return { key: nextKey++, mode: 0o120777, target: Buffer.from(target) };
}
export function chrdev(rdev: number): MemNode {
  return { key: nextKey++, mode: 0o020600, rdev };
}
/** Children in any order; names given as strings are latin1, Buffers are taken as they are. */
export function dir(children: Record<string, MemNode> | [string | Buffer, MemNode][], extra: Partial<MemNode> = {}): MemNode {
  const list = Array.isArray(children) ? children : Object.entries(children);
  return {
    key: nextKey++,
    mode: 0o040755,
    entries: list.map(([n, node]) => ({ name: typeof n === 'string' ? Buffer.from(n, 'latin1') : n, node })),
    ...extra,
  };
}
export function xattrs(o: Record<string, string>): Map<string, Buffer> {
  return new Map(Object.entries(o).map(([k, v]) => [k, Buffer.from(v)]));
}

export class MemLayer implements Layer<MemNode> {
  readonly calls = { readdir: 0, lookup: 0, fromKey: 0 };
  private readonly byKey = new Map<number, MemNode>();
  private readonly indexes = new Map<MemNode, Map<string, MemNode>>();
  private readonly sorted = new Map<MemNode, LayerDirEntry<MemNode>[]>();

  constructor(private readonly rootNode: MemNode) {
    const index = (n: MemNode): void => {
      this.byKey.set(n.key, n);
      for (const e of n.entries ?? []) index(e.node);
    };
    index(rootNode);
  }

  root(): MemNode {
    return this.rootNode;
  }
  lookup(d: MemNode, name: Buffer): MemNode | undefined {
    this.calls.lookup++;
    if (!d.entries) return undefined;
    // First entry of a name wins, like find() would; a Map keeps benchmarks about the overlay.
    let index = this.indexes.get(d);
    if (!index) {
      index = new Map();
      for (const e of d.entries) if (!index.has(e.name.toString('latin1'))) index.set(e.name.toString('latin1'), e.node);
      this.indexes.set(d, index);
    }
    return index.get(name.toString('latin1'));
  }
  getattr(n: MemNode): NodeAttr {
    const size = n.data?.length ?? n.target?.length ?? (n.entries ? 4096 : 0);
    return {
      ino: n.key,
      mode: n.mode,
      nlink: n.nlink ?? (n.entries ? 2 : 1),
      uid: n.uid ?? 0,
      gid: n.gid ?? 0,
      size,
      mtime: n.mtime ?? 1_700_000_000,
      mtimeNsec: 0,
      rdev: n.rdev ?? 0,
      blocks: Math.ceil(size / 512),
      blksize: 4096,
    };
  }
  readdir(d: MemNode): LayerDirEntry<MemNode>[] {
    this.calls.readdir++;
    if (!d.entries) throw new Error('not a directory');
    let list = this.sorted.get(d);
    if (!list) {
      list = [...d.entries].sort((a, b) => Buffer.compare(a.name, b.name));
      this.sorted.set(d, list);
    }
    return list;
  }
  readlink(n: MemNode): Buffer {
    if (!n.target) throw new Error('not a symlink');
    return n.target;
  }
  listxattr(n: MemNode): Buffer[] {
    return [...(n.xattrs?.keys() ?? [])].map((k) => Buffer.from(k));
  }
  getxattr(n: MemNode, name: Buffer): Buffer | undefined {
    return n.xattrs?.get(name.toString('latin1'));
  }
  read(n: MemNode, position: number, length: number): Buffer {
    if (!n.data) throw new Error('not a file');
    return n.data.subarray(position, position + length);
  }
  key(n: MemNode): number {
    return n.key;
  }
  fromKey(key: number): MemNode {
    this.calls.fromKey++;
    const n = this.byKey.get(key);
    if (!n) throw new Error(`no node with key ${key}`);
    return n;
  }
}
