/**
 * A minimal erofs image writer for the tests of formats erofs-utils 1.5 cannot make (it offers
 * only lz4 and lz4hc): files compressed with DEFLATE (node:zlib) or zstd (the zstd tool), one
 * physical cluster per 4 KiB logical cluster, legacy (full) indexes, 0padding, per-algorithm
 * configs after the superblock. Test images made here are always checked against the kernel's
 * own erofs mount of them (this kernel has erofs DEFLATE and zstd): the kernel is the
 * independent reader, this writer only lays bytes out as erofs_fs.h documents them.
 */
import { execFileSync } from 'node:child_process';
import { deflateRawSync } from 'node:zlib';

export type WriterAlgorithm = 'deflate' | 'zstd';
const ALG_NUMBER: Record<WriterAlgorithm, number> = { deflate: 2, zstd: 3 };

export interface WriterFile {
  name: string;
  data: Buffer;
  algorithm: WriterAlgorithm;
  mode?: number;
  mtime?: number;
  /**
   * fragments: 'whole' keeps the file in the packed inode (no clusters), 'tail' its last partial
   * logical cluster (the file must be longer than 4 KiB and not a multiple of it).
   */
  fragment?: 'whole' | 'tail';
  /**
   * dedupe: the file (at most 4 KiB) is the prefix of the first cluster of the file named here
   * (which must compress), referenced partially instead of stored.
   */
  prefixOf?: string;
  /**
   * Two extents split inside a logical cluster: [0, 6000) compressed, the rest (at most 4 KiB)
   * a plain cluster stored interlaced (each byte at its file offset modulo the block size).
   */
  interlaced?: boolean;
  /** xattrs stored inline after the inode; a name starting with a long prefix uses it. */
  xattrs?: { name: string; value: Buffer }[];
}

/** Long xattr name prefixes (xattr_prefixes), e.g. 'user.atomfs.test.': each must start with a short one. */
export interface WriterOptions {
  buildTime?: number;
  longPrefixes?: string[];
}

const SHORT_PREFIXES: [number, string][] = [
  [1, 'user.'],
  [4, 'trusted.'],
  [6, 'security.'],
];

/** The xattr body after an inode: the 12-byte header, then 4-aligned entries. */
function xattrBody(xattrs: { name: string; value: Buffer }[], longPrefixes: string[]): Buffer {
  const parts = [Buffer.alloc(12)];
  for (const x of xattrs) {
    const long = longPrefixes.findIndex((p) => x.name.startsWith(p));
    const short = SHORT_PREFIXES.find(([, p]) => x.name.startsWith(p));
    const [index, rest] = long >= 0 ? [0x80 | long, x.name.slice(longPrefixes[long]!.length)] : [short![0], x.name.slice(short![1].length)];
    const name = Buffer.from(rest);
    const e = Buffer.alloc(Math.ceil((4 + name.length + x.value.length) / 4) * 4);
    e[0] = name.length;
    e[1] = index;
    e.writeUInt16LE(x.value.length, 2);
    name.copy(e, 4);
    x.value.copy(e, 4 + name.length);
    parts.push(e);
  }
  return Buffer.concat(parts);
}

const BLOCK = 4096;
const INODE_EXTENDED = 64;

/** zstd frames with and without the content size in their header (a streaming compressor's). */
let zstdFrames = 0;

function compress(algorithm: WriterAlgorithm, data: Buffer): Buffer {
  if (algorithm === 'deflate') return deflateRawSync(data, { level: 9, windowBits: 15 });
  const size = zstdFrames++ % 2 === 0 ? [`--stream-size=${data.length}`] : ['--no-content-size', '--zstd=wlog=16'];
  return execFileSync('zstd', ['-19', '-q', '-c', ...size], { input: data, maxBuffer: 1 << 20 });
}

function extendedInode(o: { format: number; mode: number; size: number; u: number; nlink: number; mtime: number; ino: number }): Buffer {
  const b = Buffer.alloc(INODE_EXTENDED);
  b.writeUInt16LE(o.format, 0);
  b.writeUInt16LE(0, 2);
  b.writeUInt16LE(o.mode, 4);
  b.writeBigUInt64LE(BigInt(o.size), 8);
  b.writeUInt32LE(o.u, 16);
  b.writeUInt32LE(o.ino, 20);
  b.writeBigUInt64LE(BigInt(o.mtime), 32);
  b.writeUInt32LE(o.nlink, 44);
  return b;
}

/** The image: block 0 superblock + configs, block 1.. inodes (metadata), then directory and data blocks. */
export function writeErofsImage(files: readonly WriterFile[], options: WriterOptions = {}): Buffer {
  const buildTime = options.buildTime ?? 1_700_000_000;
  const longPrefixes = options.longPrefixes ?? [];
  const sorted = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  // Metadata: the root inode at nid 0, then each file's inode + map header + legacy indexes.
  const meta: Buffer[] = [];
  let metaLen = 0;
  const place = (b: Buffer): number => {
    const nid = metaLen / 32;
    const padded = Buffer.alloc(Math.ceil(b.length / 32) * 32);
    b.copy(padded);
    meta.push(padded);
    metaLen += padded.length;
    return nid;
  };
  const rootPlaceholder = Buffer.alloc(INODE_EXTENDED);
  place(rootPlaceholder);
  const data: Buffer[] = [];
  // fragments: the packed inode's bytes, each fragment appended.
  const packedParts: Buffer[] = [];
  let packedLen = 0;
  const fragmentAt = new Map<string, number>();
  for (const f of sorted) {
    if (f.fragment === undefined) continue;
    const part = f.fragment === 'whole' ? f.data : f.data.subarray(Math.floor(f.data.length / BLOCK) * BLOCK);
    if (f.fragment === 'tail' && (f.data.length < BLOCK || part.length === 0)) throw new Error(`${f.name}: no partial tail`);
    fragmentAt.set(f.name, packedLen);
    packedParts.push(part);
    packedLen += part.length;
  }
  // Long xattr prefixes: records (le16 size, u8 short index, infix), 4-aligned, in the packed
  // inode when there is one, else in block 0 after the compression configs.
  const prefixRecords: Buffer[] = [];
  for (const p of longPrefixes) {
    const [index, base] = SHORT_PREFIXES.find(([, b]) => p.startsWith(b))!;
    const infix = Buffer.from(p.slice(base.length));
    const rec = Buffer.alloc(Math.ceil((3 + infix.length) / 4) * 4);
    rec.writeUInt16LE(1 + infix.length, 0);
    rec[2] = index;
    infix.copy(rec, 3);
    prefixRecords.push(rec);
  }
  let prefixStart = 0;
  if (prefixRecords.length > 0 && packedParts.length > 0) {
    const pad = (4 - (packedLen % 4)) % 4;
    packedParts.push(Buffer.alloc(pad));
    packedLen += pad;
    prefixStart = packedLen / 4;
    for (const r of prefixRecords) {
      packedParts.push(r);
      packedLen += r.length;
    }
  }
  const packed = Buffer.concat(packedParts);
  // Blocks are numbered after the metadata, which is sized below; collect clusters first.
  const fileClusters = sorted.map((f) => {
    const clusters: { head: number; bytes: Buffer }[] = [];
    if (f.fragment === 'whole' || f.prefixOf !== undefined) return clusters;
    if (f.interlaced) {
      if (f.data.length <= 6000 || f.data.length > 6000 + BLOCK) throw new Error(`${f.name}: an interlaced file is 6001..10096 bytes`);
      const c = compress(f.algorithm, f.data.subarray(0, 6000));
      if (c.length >= BLOCK) throw new Error(`${f.name}: the first 6000 bytes must compress`);
      const first = Buffer.alloc(BLOCK);
      c.copy(first, BLOCK - c.length);
      const plain = Buffer.alloc(BLOCK);
      for (let x = 6000; x < f.data.length; x++) plain[x % BLOCK] = f.data[x]!;
      return [
        { head: 1, bytes: first },
        { head: 0, bytes: plain },
      ];
    }
    const stop = f.fragment === 'tail' ? Math.floor(f.data.length / BLOCK) * BLOCK : f.data.length;
    for (let off = 0; off < stop; off += BLOCK) {
      const chunk = f.data.subarray(off, off + BLOCK);
      const c = compress(f.algorithm, chunk);
      if (c.length < BLOCK) {
        const blk = Buffer.alloc(BLOCK);
        c.copy(blk, BLOCK - c.length); // 0padding: the stream ends at the block's end
        clusters.push({ head: 1, bytes: blk });
      } else {
        const blk = Buffer.alloc(BLOCK);
        chunk.copy(blk); // a plain cluster: stored as is
        clusters.push({ head: 0, bytes: blk });
      }
    }
    return clusters;
  });
  const xattrBytes = (f: WriterFile): number => (f.xattrs === undefined ? 0 : xattrBody(f.xattrs, longPrefixes).length + 8);
  const metaBytesEstimate = INODE_EXTENDED + sorted.reduce((n, f) => n + Math.ceil((INODE_EXTENDED + xattrBytes(f) + 24 + 8 * Math.ceil(f.data.length / BLOCK)) / 32) * 32, 0);
  const metaBlocks = Math.ceil((metaBytesEstimate + INODE_EXTENDED) / BLOCK);
  const dirBlock = 1 + metaBlocks;
  let nextBlock = dirBlock + 1;
  const nids: number[] = [];
  const firstBlock = new Map<string, number>();
  sorted.forEach((f, i) => {
    const clusters = fileClusters[i]!;
    const header = Buffer.alloc(16);
    header.writeUInt16LE(0, 4); // h_advise: legacy indexes, no big pclusters
    header[6] = ALG_NUMBER[f.algorithm]; // head1 algorithm
    header[7] = 0; // 4 KiB logical clusters
    const xb = f.xattrs === undefined ? Buffer.alloc(0) : xattrBody(f.xattrs, longPrefixes);
    // The inode, its xattr body (i_xattr_icount: 12-byte header + 4-byte slots), padded to 8 for the map header.
    const inodeOf = (u: number): Buffer => {
      const ino = extendedInode({ format: 1 | (1 << 1), mode: f.mode ?? 0o100644, size: f.data.length, u, nlink: 1, mtime: f.mtime ?? buildTime, ino: i + 2 });
      if (xb.length === 0) return ino;
      ino.writeUInt16LE((xb.length - 12) / 4 + 1, 2);
      return Buffer.concat([ino, xb, Buffer.alloc((8 - (xb.length % 8)) % 8)]);
    };
    if (f.fragment === 'whole') {
      // The header is the fragment's offset with bit 63 set (h_clusterbits' top bit).
      header.writeBigUInt64LE(BigInt(fragmentAt.get(f.name)!) | (1n << 63n), 0);
      nids.push(place(Buffer.concat([inodeOf(0), header.subarray(0, 8)])));
      return;
    }
    if (f.prefixOf !== undefined) {
      // One head, partially referencing another file's first cluster (di_advise bit 15).
      const at = firstBlock.get(f.prefixOf);
      if (at === undefined || f.data.length > BLOCK) throw new Error(`${f.name}: ${f.prefixOf} must sort before it and compress`);
      const index = Buffer.alloc(8);
      index.writeUInt16LE(1 | 0x8000, 0);
      index.writeUInt32LE(at, 4);
      nids.push(place(Buffer.concat([inodeOf(0), header, index])));
      return;
    }
    if (f.interlaced) {
      // lcluster 0: head of [0, 6000); 1: plain head at 6000 - 4096; 2 (if any): non-head, 1 back.
      header.writeUInt16LE(0x10, 4); // h_advise: INTERLACED_PCLUSTER
      const n = Math.ceil(f.data.length / BLOCK);
      const idx = Buffer.alloc(8 * n);
      idx.writeUInt16LE(1, 0);
      idx.writeUInt32LE(nextBlock, 4);
      idx.writeUInt16LE(0, 8);
      idx.writeUInt16LE(6000 - BLOCK, 10);
      idx.writeUInt32LE(nextBlock + 1, 12);
      if (n === 3) {
        idx.writeUInt16LE(2, 16);
        idx.writeUInt16LE(1, 20); // delta[0]: one back to the head
        idx.writeUInt16LE(1, 22); // delta[1]
      }
      for (const c of clusters) data.push(c.bytes);
      nextBlock += 2;
      nids.push(place(Buffer.concat([inodeOf(2), header, idx])));
      return;
    }
    const tail = f.fragment === 'tail' ? 1 : 0;
    const indexes = Buffer.alloc(8 * (clusters.length + tail));
    clusters.forEach((c, k) => {
      indexes.writeUInt16LE(c.head, 8 * k); // type: 0 plain, 1 head1
      indexes.writeUInt16LE(0, 8 * k + 2); // cluster offset
      indexes.writeUInt32LE(nextBlock + k, 8 * k + 4);
      data.push(c.bytes);
    });
    if (clusters[0]?.head === 1) firstBlock.set(f.name, nextBlock);
    if (tail) {
      // The tail extent's head: its block address holds the fragment offset's high 32 bits.
      indexes.writeUInt16LE(1, 8 * clusters.length);
      header.writeUInt32LE(fragmentAt.get(f.name)!, 0);
      header.writeUInt16LE(0x20, 4); // h_advise: FRAGMENT_PCLUSTER
    }
    nextBlock += clusters.length;
    nids.push(place(Buffer.concat([inodeOf(clusters.length), header, indexes])));
  });
  // The packed inode: a plain flat file, listed in no directory.
  let packedNid = 0;
  const packedBlocks = Math.ceil(packed.length / BLOCK);
  if (packed.length > 0) {
    packedNid = place(extendedInode({ format: 1 | (0 << 1), mode: 0o100644, size: packed.length, u: nextBlock, nlink: 1, mtime: buildTime, ino: sorted.length + 2 }));
    const area = Buffer.alloc(packedBlocks * BLOCK);
    packed.copy(area);
    data.push(area);
    nextBlock += packedBlocks;
  }
  if (metaLen > metaBlocks * BLOCK) throw new Error('metadata estimate too small');
  // The root directory: ".", "..", then the files, in one block.
  const names = [Buffer.from('.'), Buffer.from('..'), ...sorted.map((f) => Buffer.from(f.name))];
  const entryNids = [0, 0, ...nids];
  const types = [2, 2, ...sorted.map(() => 1)];
  const order = names.map((n, i) => i).sort((a, b) => Buffer.compare(names[a]!, names[b]!));
  const dir = Buffer.alloc(BLOCK);
  let nameoff = 12 * names.length;
  order.forEach((i, k) => {
    dir.writeBigUInt64LE(BigInt(entryNids[i]!), 12 * k);
    dir.writeUInt16LE(nameoff, 12 * k + 8);
    dir[12 * k + 10] = types[i]!;
    names[i]!.copy(dir, nameoff);
    nameoff += names[i]!.length;
  });
  if (nameoff > BLOCK) throw new Error('too many names for one directory block');
  const root = extendedInode({ format: 1 | (0 << 1), mode: 0o040755, size: nameoff, u: dirBlock, nlink: 2, mtime: buildTime, ino: 1 });
  root.copy(meta[0]!);
  // Block 0: superblock at 1024, then one config record per algorithm in use (le16 size + payload, 4-aligned).
  const sb = Buffer.alloc(BLOCK);
  const algs = [...new Set(sorted.map((f) => ALG_NUMBER[f.algorithm]))].sort();
  const totalBlocks = nextBlock;
  sb.writeUInt32LE(0xe0f5e1e2, 1024);
  sb[1024 + 12] = 12; // blkszbits
  sb.writeUInt16LE(0, 1024 + 14); // root nid
  sb.writeBigUInt64LE(BigInt(sorted.length + 1), 1024 + 16);
  sb.writeBigUInt64LE(BigInt(buildTime), 1024 + 24);
  sb.writeUInt32LE(totalBlocks, 1024 + 36);
  sb.writeUInt32LE(1, 1024 + 40); // meta_blkaddr
  const dedupeOrFragments = sorted.some((f) => f.fragment !== undefined || f.prefixOf !== undefined);
  sb.writeUInt32LE(0x1 | 0x2 | (dedupeOrFragments ? 0x20 : 0), 1024 + 80); // 0padding | compr_cfgs | fragments/dedupe
  sb.writeBigUInt64LE(BigInt(packedNid), 1024 + 96);
  if (prefixRecords.length > 0) {
    if (packed.length === 0) {
      prefixStart = 2048 / 4;
      Buffer.concat(prefixRecords).copy(sb, 2048);
    }
    sb[1024 + 91] = prefixRecords.length;
    sb.writeUInt32LE(prefixStart, 1024 + 92);
    sb.writeUInt32LE(sb.readUInt32LE(1024 + 80) | 0x40, 1024 + 80); // xattr_prefixes
  }
  sb.writeUInt16LE(algs.reduce((m, a) => m | (1 << a), 0), 1024 + 84);
  let off = 1024 + 128;
  for (const a of algs) {
    off = Math.ceil(off / 4) * 4;
    sb.writeUInt16LE(6, off);
    // deflate: windowbits 15; zstd: format 0, windowlog 10 (1 MiB window).
    if (a === 2) sb[off + 2] = 15;
    else sb[off + 3] = 10;
    off += 2 + 6;
  }
  const metaBuf = Buffer.alloc(metaBlocks * BLOCK);
  Buffer.concat(meta).copy(metaBuf);
  return Buffer.concat([sb, metaBuf, dir, ...data]);
}
