/**
 * An in-memory FileSystem for tests and benchmarks, described by plain data so that every
 * thread (session, read workers, the test itself) builds the identical tree.
 *
 * File bytes are computed, not stored: 'pattern' files come from a cheap PRNG per 4 KiB block;
 * 'inflate' files decompress a deflate block per 128 KiB (costs CPU like squashfs data).
 * read() depends only on (node, fh) and the immutable tree, as read workers require.
 */
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Errno, FuseErrno, makeDev, type Attr, type DirEntry, type Entry, type FileSystem, type OpenResult, type Statfs } from '../src/index.js';

export interface CommonSpec {
  name: string;
  /** Permission bits (default 0644 files, 0755 dirs, 0777 symlinks). */
  perm?: number;
  uid?: number;
  gid?: number;
  /** [name, value as hex] pairs. */
  xattrs?: [string, string][];
}

export interface DirSpec extends CommonSpec {
  type: 'dir';
  children: NodeSpec[];
}

export interface FileSpec extends CommonSpec {
  type: 'file';
  size: number;
  seed: number;
  content?: 'pattern' | 'inflate';
  /** Reads fail: 'crash' throws a plain Error (⇒ EIO), 'eacces' throws FuseErrno(EACCES). */
  fail?: 'crash' | 'eacces';
}

export interface SymlinkSpec extends CommonSpec {
  type: 'symlink';
  target: string;
}

export interface SpecialSpec extends CommonSpec {
  type: 'fifo' | 'chr' | 'blk' | 'sock';
  major?: number;
  minor?: number;
}

export type NodeSpec = DirSpec | FileSpec | SymlinkSpec | SpecialSpec;

export interface MemFsOptions {
  tree?: DirSpec;
  preset?: 'standard' | 'bench';
  /** For preset 'bench'. */
  bench?: BenchParams;
}

export interface BenchParams {
  bigFileSize: number;
  dirs: number;
  filesPerDir: number;
  content: 'pattern' | 'inflate';
}

export const KiB = 1024;
export const MiB = 1024 * 1024;

const hex = (s: string): string => Buffer.from(s).toString('hex');

/** The tree the mount tests compare against. */
export function standardTree(): DirSpec {
  const dir700: NodeSpec[] = [];
  for (let i = 0; i < 700; i++) {
    dir700.push({ type: 'file', name: `entry-${String(i).padStart(4, '0')}`, size: i % 50, seed: 1000 + i });
  }
  return {
    type: 'dir',
    name: '',
    perm: 0o755,
    xattrs: [['user.root', hex('root-value')]],
    children: [
      { type: 'file', name: 'empty', size: 0, seed: 1 },
      {
        type: 'file',
        name: 'one',
        size: 1,
        seed: 2,
        xattrs: [
          ['user.a', hex('hello')],
          ['user.big', Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7 + 3) & 0xff)).toString('hex')],
          ['user.binary', '00ff10'],
        ],
      },
      { type: 'file', name: 'f4095', size: 4095, seed: 3 },
      { type: 'file', name: 'f4096', size: 4096, seed: 4, perm: 0o600, uid: 1234, gid: 5678 },
      { type: 'file', name: 'f4097', size: 4097, seed: 5, perm: 0o755 },
      { type: 'file', name: 'mib1', size: MiB + 1, seed: 6 },
      { type: 'file', name: 'big20', size: 20 * MiB, seed: 7 },
      { type: 'file', name: 'inflated', size: 3 * MiB + 12345, seed: 8, content: 'inflate' },
      { type: 'file', name: 'with space', size: 10, seed: 9 },
      { type: 'file', name: 'ünïcødé', size: 11, seed: 10 },
      { type: 'file', name: 'crash', size: 100, seed: 11, fail: 'crash' },
      { type: 'file', name: 'denied', size: 100, seed: 12, fail: 'eacces' },
      { type: 'dir', name: 'dir700', children: dir700 },
      {
        type: 'dir',
        name: 'sub',
        perm: 0o700,
        uid: 1234,
        gid: 5678,
        xattrs: [['user.dir', hex('d')]],
        children: [{ type: 'dir', name: 'deep', children: [{ type: 'file', name: 'leaf', size: 5000, seed: 13 }] }, { type: 'dir', name: 'emptydir', children: [] }],
      },
      { type: 'symlink', name: 'link', target: 'one' },
      { type: 'symlink', name: 'dangling', target: 'does/not/exist' },
      { type: 'symlink', name: 'longlink', target: 'x/'.repeat(400) + 'end' },
      { type: 'fifo', name: 'fifo', perm: 0o640 },
      { type: 'chr', name: 'null', major: 1, minor: 3, perm: 0o666 },
      { type: 'blk', name: 'blk', major: 259, minor: 300000 },
      { type: 'sock', name: 'sock' },
    ],
  };
}

/** Many small entries plus one big file, for the transport benchmark. */
export function benchTree(p: BenchParams): DirSpec {
  const dirs: NodeSpec[] = [];
  let seed = 100;
  for (let d = 0; d < p.dirs; d++) {
    const files: NodeSpec[] = [];
    for (let f = 0; f < p.filesPerDir; f++) files.push({ type: 'file', name: `f${f}`, size: 100 + (f % 900), seed: seed++ });
    dirs.push({ type: 'dir', name: `d${d}`, children: files });
  }
  return {
    type: 'dir',
    name: '',
    children: [{ type: 'file', name: 'big', size: p.bigFileSize, seed: 42, content: p.content }, { type: 'dir', name: 'small', children: dirs }],
  };
}

export function treeOf(options: MemFsOptions): DirSpec {
  if (options.tree) return options.tree;
  if (options.preset === 'bench') return benchTree(options.bench ?? { bigFileSize: 256 * MiB, dirs: 200, filesPerDir: 100, content: 'inflate' });
  return standardTree();
}

// --- content ---------------------------------------------------------------------------------

const PATTERN_BLOCK = 4096;
const INFLATE_BLOCK = 128 * KiB;

const TABLE_SIZE = 1 << 20;
let table: Buffer | undefined;
/** 1 MiB + 4 KiB of PRNG output, the same in every thread (computed once per thread). */
function randomTable(): Buffer {
  if (!table) {
    const words = new Uint32Array((TABLE_SIZE + PATTERN_BLOCK) / 4);
    let x = 0x2545f491;
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
    table = Buffer.from(words.buffer);
  }
  return table;
}

/**
 * Copies bytes [from, from+n) of the 4 KiB block (seed, block) to out[at..]: a slice of the
 * random table at a position derived from both, its first 8 bytes replaced by (seed, block),
 * so a read from a wrong offset or file cannot match.
 */
function copyPatternBlock(seed: number, block: number, from: number, n: number, out: Buffer, at: number): void {
  const start = (((Math.imul(block + 1, 0x9e3779b1) ^ Math.imul(seed, 0x85ebca6b)) >>> 0) % TABLE_SIZE) & ~7;
  randomTable().copy(out, at, start + from, start + from + n);
  if (from < 8) {
    const stamp = Buffer.alloc(8);
    stamp.writeUInt32LE(seed >>> 0, 0);
    stamp.writeUInt32LE(block >>> 0, 4);
    stamp.copy(out, at, from, Math.min(8, from + n));
  }
}

let inflateTemplate: Buffer | undefined;
/** A deflate stream of 128 KiB of text-like bytes that compresses about 3:1, like real files. */
function template(): Buffer {
  if (!inflateTemplate) {
    const words = ['fuse', 'kernel', 'squashfs', 'layer', 'overlay', 'inode', 'block', 'verity', 'node', 'read'];
    const raw = Buffer.alloc(INFLATE_BLOCK);
    let x = 12345;
    for (let i = 0; i < raw.length; ) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const w = (x >>> 16) % 16 < 10 ? words[(x >>> 16) % 10]! : String((x >>> 8) & 0xffff);
      i += raw.write(w + ' ', i);
    }
    inflateTemplate = deflateRawSync(raw, { level: 6 });
  }
  return inflateTemplate;
}

function inflateBlock(seed: number, block: number): Buffer {
  const out = inflateRawSync(template());
  // Make each block distinct so that a wrong offset cannot go unnoticed.
  out.writeUInt32LE(seed >>> 0, 0);
  out.writeUInt32LE(block >>> 0, 4);
  return out;
}

/** Bytes [offset, offset+length) of a file (clamped to its size). */
export function fileBytes(spec: FileSpec, offset: number, length: number): Buffer {
  const n = Math.max(0, Math.min(spec.size, offset + length) - offset);
  return fileBytesInto(spec, offset, length, Buffer.allocUnsafe(n));
}

/** Like fileBytes, into `target` (which must be large enough); returns the filled part. */
export function fileBytesInto(spec: FileSpec, offset: number, length: number, target: Buffer): Buffer {
  const end = Math.min(spec.size, offset + length);
  if (offset >= end) return target.subarray(0, 0);
  const inflate = spec.content === 'inflate';
  const blockSize = inflate ? INFLATE_BLOCK : PATTERN_BLOCK;
  const out = target.subarray(0, end - offset);
  let pos = offset;
  while (pos < end) {
    const block = Math.floor(pos / blockSize);
    const from = pos - block * blockSize;
    const n = Math.min(blockSize - from, end - pos);
    if (inflate) inflateBlock(spec.seed, block).copy(out, pos - offset, from, from + n);
    else copyPatternBlock(spec.seed, block, from, n, out, pos - offset);
    pos += n;
  }
  return out;
}

export function fileSha256(spec: FileSpec): string {
  const h = createHash('sha256');
  for (let pos = 0; pos < spec.size; pos += 4 * MiB) h.update(fileBytes(spec, pos, 4 * MiB));
  return h.digest('hex');
}

// --- the FileSystem --------------------------------------------------------------------------

const S_IFMT = 0o170000;
const TYPE_BITS: Record<NodeSpec['type'], number> = {
  dir: 0o040000,
  file: 0o100000,
  symlink: 0o120000,
  fifo: 0o010000,
  chr: 0o020000,
  blk: 0o060000,
  sock: 0o140000,
};

export interface MemNode {
  readonly id: bigint;
  readonly spec: NodeSpec;
  readonly parent: MemNode | undefined;
  /** Path from the root ("" for the root). */
  readonly path: string;
  readonly attr: Attr;
  readonly children: MemNode[];
  readonly byName: Map<string, MemNode>;
  readonly xattrs: Map<string, Buffer>;
}

function defaultPerm(type: NodeSpec['type']): number {
  return type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644;
}

/** Builds the nodes in depth-first order: the root is node 1, ids equal st_ino. */
export function buildNodes(tree: DirSpec): MemNode[] {
  const nodes: MemNode[] = [];
  const add = (spec: NodeSpec, parent: MemNode | undefined): MemNode => {
    const id = BigInt(nodes.length + 1);
    const n = Number(id);
    const size = spec.type === 'file' ? spec.size : spec.type === 'symlink' ? Buffer.byteLength(spec.target) : spec.type === 'dir' ? 4096 : 0;
    const attr: Attr = {
      ino: id,
      size,
      blocks: Math.ceil(size / 512),
      atime: 1_500_000_000 + n,
      mtime: 1_600_000_000 + n,
      ctime: 1_700_000_000 + n,
      atimensec: (n * 1_000_003) % 1_000_000_000,
      mtimensec: (n * 7_000_001) % 1_000_000_000,
      ctimensec: (n * 13_000_007) % 1_000_000_000,
      mode: TYPE_BITS[spec.type] | (spec.perm ?? defaultPerm(spec.type)),
      nlink: 1,
      uid: spec.uid ?? 0,
      gid: spec.gid ?? 0,
      rdev: spec.type === 'chr' || spec.type === 'blk' ? makeDev(spec.major ?? 0, spec.minor ?? 0) : 0,
      blksize: 4096,
    };
    const node: MemNode = {
      id,
      spec,
      parent,
      path: parent === undefined ? '' : parent.path === '' ? spec.name : `${parent.path}/${spec.name}`,
      attr,
      children: [],
      byName: new Map(),
      xattrs: new Map((spec.xattrs ?? []).map(([k, v]) => [k, Buffer.from(v, 'hex')])),
    };
    nodes.push(node);
    if (spec.type === 'dir') {
      for (const c of spec.children) {
        const child = add(c, node);
        node.children.push(child);
        node.byName.set(c.name, child);
      }
      attr.nlink = 2 + node.children.filter((c) => c.spec.type === 'dir').length;
    }
    return node;
  };
  add(tree, undefined);
  return nodes;
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

export class MemFs implements FileSystem {
  readonly immutable = true;
  readonly nodes: MemNode[];
  /** Node ids forgotten by the kernel (for tests running the FS in-thread). */
  readonly forgotten: bigint[] = [];
  openFiles = 0;
  private scratch = Buffer.allocUnsafe(0);

  constructor(tree: DirSpec) {
    this.nodes = buildNodes(tree);
  }

  node(id: bigint): MemNode {
    const n = id >= 1n && id <= BigInt(this.nodes.length) ? this.nodes[Number(id) - 1] : undefined;
    if (!n) throw new FuseErrno(Errno.ENOENT, `no node ${id}`);
    return n;
  }

  private entry(n: MemNode): Entry {
    return { nodeid: n.id, attr: n.attr };
  }

  lookup(parent: bigint, name: Buffer): Entry | undefined {
    const dir = this.node(parent);
    if (dir.spec.type !== 'dir') throw new FuseErrno(Errno.ENOTDIR);
    const child = dir.byName.get(name.toString());
    return child ? this.entry(child) : undefined;
  }

  forget(node: bigint): void {
    this.forgotten.push(node);
  }

  getattr(node: bigint): Attr {
    return this.node(node).attr;
  }

  readlink(node: bigint): Buffer {
    const n = this.node(node);
    if (n.spec.type !== 'symlink') throw new FuseErrno(Errno.EINVAL);
    return Buffer.from(n.spec.target);
  }

  open(node: bigint): OpenResult {
    const n = this.node(node);
    if (n.spec.type === 'dir') throw new FuseErrno(Errno.EISDIR);
    this.openFiles++;
    // The handle is the node id: enough for any thread to answer read() without shared state.
    return { fh: n.id };
  }

  read(node: bigint, fh: bigint, offset: number, size: number): Buffer {
    const n = this.node(fh);
    if (n.id !== node) throw new Error(`fh ${fh} does not belong to node ${node}`);
    const spec = n.spec;
    if (spec.type !== 'file') throw new FuseErrno(Errno.EINVAL);
    if (spec.fail === 'crash') throw new Error(`simulated failure reading ${n.path}`);
    if (spec.fail === 'eacces') throw new FuseErrno(Errno.EACCES);
    // One reused buffer per instance: the reply is written before the next read() on this
    // thread, and fresh memory is expensive (page faults on every new large allocation).
    const want = Math.max(0, Math.min(spec.size, offset + size) - offset);
    if (this.scratch.length < want) this.scratch = Buffer.allocUnsafe(Math.max(want, 2 * this.scratch.length));
    return fileBytesInto(spec, offset, size, this.scratch);
  }

  release(): void {
    this.openFiles--;
  }

  *readdir(node: bigint, _fh: bigint, offset: bigint, plus: boolean): Iterable<DirEntry> {
    const dir = this.node(node);
    if (dir.spec.type !== 'dir') throw new FuseErrno(Errno.ENOTDIR);
    // Cookie i+1 resumes after entry i; entries 0 and 1 are "." and "..".
    const all: [Buffer, MemNode][] = [[DOT, dir], [DOTDOT, dir.parent ?? dir], ...dir.children.map((c): [Buffer, MemNode] => [Buffer.from(c.spec.name), c])];
    for (let i = Number(offset); i < all.length; i++) {
      const [name, n] = all[i]!;
      yield { name, cookie: BigInt(i + 1), ino: n.id, mode: n.attr.mode, ...(plus ? { entry: this.entry(n) } : {}) };
    }
  }

  statfs(): Statfs {
    return { blocks: 123456, bfree: 0, bavail: 0, files: this.nodes.length, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
  }

  getxattr(node: bigint, name: Buffer): Buffer | undefined {
    return this.node(node).xattrs.get(name.toString());
  }

  listxattr(node: bigint): Buffer[] {
    return [...this.node(node).xattrs.keys()].map((k) => Buffer.from(k));
  }
}

/** Entry point for FuseServer worker mode: `{ module: <this file>, options: MemFsOptions }`. */
export function createFileSystem(options: MemFsOptions): FileSystem {
  return new MemFs(treeOf(options ?? {}));
}

export { S_IFMT };
