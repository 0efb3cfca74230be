/**
 * Block decompressor throughput: MB/s (10^6 bytes of decoded output per second, one thread, sync
 * API) over every 128 KiB data block of real mksquashfs images of mixed data (shared libraries,
 * C headers, Python sources, docs). Each image holds one 32 MiB file built by concatenating those
 * files; it is made with -noI so the data blocks are located from the uncompressed inode table,
 * without our reader. Every decoder's output is compared with the source before it is timed.
 *
 * Build and run:  ./node_modules/.bin/tsc -b packages/squashfs && ./node_modules/.bin/tsc -p bench
 *                 node bench/dist/decompressors.js        (RUNS=7 MIN_SECONDS=0.3 by default; ONLY=lz4 for a subset)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, closeSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
// The squashfs package exports only createDecompressor; the individual decoders compared here
// are loaded from its build output. Types come from the source tree's view of that output (this
// file's directory), the module at run time from the same place seen from bench/dist/.
type Compression = typeof import('../packages/squashfs/dist/src/compression/index.js');
type Native = typeof import('../packages/squashfs/dist/src/compression/native.js');
type Decompressor = import('../packages/squashfs/dist/src/compression/index.js').Decompressor;
const squashfsDist = new URL('../../packages/squashfs/dist/src/compression/', import.meta.url);
const { createDecompressor, Lz4Decompressor, XzDecompressor, ZstdDecompressor } = (await import(new URL('index.js', squashfsDist).href)) as Compression;
const { loadFzstd, loadLz4, loadLzma, loadZstd, tryRequire } = (await import(new URL('native.js', squashfsDist).href)) as Native;

const DIR = join(process.env.ATOMFS_BENCH_DIR ?? '/var/tmp/atomfs-bench', 'decompressors');
const BLOCK_SIZE = 128 * 1024;
const RUNS = Number(process.env.RUNS ?? 7);
const MIN_SECONDS = Number(process.env.MIN_SECONDS ?? 0.3);

/** Where the mixed source data comes from, and how much of each (sorted walk, whole files). */
const SOURCES: Array<[dir: string, bytes: number]> = [
  ['/usr/lib/x86_64-linux-gnu', 12 << 20],
  ['/usr/include', 8 << 20],
  ['/usr/lib/python3.11', 6 << 20],
  ['/usr/share/doc', 6 << 20],
];

interface Variant {
  label: string;
  args: string[];
}

const VARIANTS: Variant[] = [
  { label: 'gzip', args: ['-comp', 'gzip'] },
  { label: 'lzma', args: ['-comp', 'lzma'] },
  { label: 'lzo', args: ['-comp', 'lzo'] },
  { label: 'xz', args: ['-comp', 'xz'] },
  { label: 'xz -Xbcj x86', args: ['-comp', 'xz', '-Xbcj', 'x86'] },
  { label: 'lz4', args: ['-comp', 'lz4'] },
  { label: 'lz4 -Xhc', args: ['-comp', 'lz4', '-Xhc'] },
  { label: 'zstd', args: ['-comp', 'zstd'] },
];

function* walk(dir: string): Generator<string> {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return;
  }
  for (const name of names) {
    const p = join(dir, name);
    let st;
    try {
      st = statSync(p, { throwIfNoEntry: false });
    } catch {
      continue;
    }
    if (st === undefined) continue;
    if (st.isDirectory()) yield* walk(p);
    else if (st.isFile()) yield p;
  }
}

/** The mixed-data source file (built once, reused across runs). */
function sourceFile(): string {
  const file = join(DIR, 'mixed.bin');
  if (existsSync(file)) return file;
  const parts: Buffer[] = [];
  for (const [dir, quota] of SOURCES) {
    let got = 0;
    for (const p of walk(dir)) {
      if (got >= quota) break;
      let data: Buffer;
      try {
        data = readFileSync(p);
      } catch {
        continue;
      }
      const take = data.subarray(0, quota - got);
      parts.push(take);
      got += take.length;
    }
    if (got < quota) throw new Error(`${dir}: only ${got} bytes of source data`);
  }
  writeFileSync(file, Buffer.concat(parts));
  return file;
}

interface Blocks {
  raw: Buffer[];
  expected: Buffer[];
  decodedBytes: number;
  compressedBytes: number;
  storedRaw: number;
}

/** Build (once) the image of `source` and return its compressed data blocks with their expected content. */
function imageBlocks(v: Variant, source: string, content: Buffer): Blocks {
  const img = join(DIR, `${v.label.replace(/[^a-z0-9]+/gi, '_')}.sqfs`);
  if (!existsSync(img)) {
    const src = join(DIR, 'src');
    mkdirSync(src, { recursive: true });
    const link = join(src, 'mixed.bin');
    if (!existsSync(link)) execFileSync('ln', [source, link]);
    execFileSync('mksquashfs', [src, img, ...v.args, '-noappend', '-no-fragments', '-no-xattrs', '-noI', '-b', String(BLOCK_SIZE), '-quiet', '-no-progress'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  const fd = openSync(img, 'r');
  try {
    const read = (pos: number, len: number): Buffer => {
      const b = Buffer.alloc(len);
      if (readSync(fd, b, 0, len, pos) !== len) throw new Error(`${img}: short read at ${pos}`);
      return b;
    };
    const sb = read(0, 96);
    const inodeTable = Number(sb.readBigUInt64LE(64));
    const hdr = read(inodeTable, 2).readUInt16LE(0);
    if (!(hdr & 0x8000)) throw new Error('inode table is compressed (-noI missing?)');
    const table = read(inodeTable + 2, hdr & 0x7fff);
    if (table.readUInt16LE(0) !== 2 || table.readUInt32LE(28) !== content.length) throw new Error('first inode is not the source file');
    const nblocks = Math.ceil(content.length / BLOCK_SIZE);
    if (32 + 4 * nblocks > table.length) throw new Error('block list crosses a metadata block: use a smaller source');
    const out: Blocks = { raw: [], expected: [], decodedBytes: 0, compressedBytes: 0, storedRaw: 0 };
    let pos = table.readUInt32LE(16);
    for (let i = 0; i < nblocks; i++) {
      const word = table.readUInt32LE(32 + 4 * i);
      const len = word & 0xffffff;
      const expected = content.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE);
      if (word & (1 << 24)) out.storedRaw++;
      else {
        out.raw.push(read(pos, len));
        out.expected.push(expected);
        out.decodedBytes += expected.length;
        out.compressedBytes += len;
      }
      pos += len;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

interface Candidate {
  name: string;
  decode: (src: Buffer) => Buffer;
}

function candidates(v: Variant): Candidate[] {
  const id = { gzip: 1, lzma: 2, lzo: 3, xz: 4, lz4: 5, zstd: 6 }[v.args[1] as 'gzip'];
  const ours = createDecompressor(id);
  const wrap = (name: string, d: Decompressor): Candidate => ({ name, decode: (s) => d.decompress(s, BLOCK_SIZE) });
  const list: Candidate[] = [wrap(`createDecompressor (${ours.implementation})`, ours)];
  const lzma = loadLzma();
  const lz4 = loadLz4();
  const zstd = loadZstd();
  const fzstd = loadFzstd();
  if (id === 4 && lzma.ok) {
    const lib = lzma.module;
    list.push({ name: '@napi-rs/lzma xz.decompressSync alone (no pre-scan)', decode: (s) => lib.xz.decompressSync(s) });
    list.push(wrap('XzDecompressor', new XzDecompressor(lib)));
  }
  if (id === 5) {
    list.push(wrap('TS lz4DecodeBlock', new Lz4Decompressor(undefined)));
    if (lz4.ok) {
      const lib = lz4.module;
      // lz4-napi on a buffer that already has the u32 prefix: what the framing copy costs.
      list.push({ name: 'lz4-napi uncompressSync, prefix pre-built', decode: (s) => lib.uncompressSync(s) });
    }
  }
  if (id === 6) {
    if (fzstd.ok) list.push(wrap('fzstd (fallback)', new ZstdDecompressor(undefined, fzstd.module)));
    const simple = tryRequire<{ decompress(b: Buffer): Buffer }>('zstd-napi');
    if (simple.ok) list.push({ name: 'zstd-napi decompress() (no cap)', decode: (s) => simple.module.decompress(s) });
    if (zstd.ok) list.push(wrap('ZstdDecompressor (DCtx)', new ZstdDecompressor(zstd.module)));
  }
  return list;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Prefix each block with u32le(BLOCK_SIZE), as lz4-napi's uncompressSync wants it. */
function prefixed(raw: Buffer[]): Buffer[] {
  return raw.map((b) => {
    const p = Buffer.allocUnsafe(4 + b.length);
    p.writeUInt32LE(BLOCK_SIZE, 0);
    b.copy(p, 4);
    return p;
  });
}

/** Nanoseconds this thread has run on a CPU (/proc/thread-self/schedstat, first field). */
function threadCpuNs(): number {
  return Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]);
}

/**
 * One timed pass: decode all blocks repeatedly for at least MIN_SECONDS of wall time. Returns MB/s
 * by the main thread's CPU time, which the other jobs sharing this 2-core machine disturb much
 * less than wall time (and which leaves out V8's helper GC threads), and by wall time.
 */
function timedPass(c: Candidate, inputs: Buffer[], decodedBytes: number): { cpu: number; wall: number } {
  let bytes = 0;
  const c0 = threadCpuNs();
  const t0 = process.hrtime.bigint();
  let wall = 0;
  do {
    for (const b of inputs) c.decode(b);
    bytes += decodedBytes;
    wall = Number(process.hrtime.bigint() - t0) / 1e9;
  } while (wall < MIN_SECONDS);
  const cpu = (threadCpuNs() - c0) / 1e9;
  return { cpu: bytes / cpu / 1e6, wall: bytes / wall / 1e6 };
}

interface Result {
  cpu: number[];
  wall: number[];
}

/**
 * Check every candidate's output against the source, then time them interleaved (run r of every
 * candidate before run r + 1 of any), so load changes on the shared machine hit all of them.
 */
function measureAll(cands: Candidate[], blocks: Blocks): Result[] {
  const inputs = cands.map((c) => (c.name.includes('prefix pre-built') ? prefixed(blocks.raw) : blocks.raw));
  cands.forEach((c, k) =>
    inputs[k]!.forEach((b, i) => {
      if (!c.decode(b).equals(blocks.expected[i]!)) throw new Error(`${c.name}: block ${i} decodes wrongly`);
    }),
  );
  const results: Result[] = cands.map(() => ({ cpu: [], wall: [] }));
  for (let r = 0; r < RUNS; r++) {
    cands.forEach((c, k) => {
      const { cpu, wall } = timedPass(c, inputs[k]!, blocks.decodedBytes);
      results[k]!.cpu.push(cpu);
      results[k]!.wall.push(wall);
    });
  }
  return results;
}

function main(): void {
  mkdirSync(DIR, { recursive: true });
  const source = sourceFile();
  const content = readFileSync(source);
  process.stdout.write(`node ${process.version}; source ${(content.length / 2 ** 20).toFixed(0)} MiB mixed data; ${BLOCK_SIZE / 1024} KiB blocks; median of ${RUNS} runs x >= ${MIN_SECONDS}s\n\n`);
  const rows: string[][] = [['image', 'ratio', 'decoder', 'MB/s thread-cpu (median)', 'MB/s wall (best)']];
  const only = process.env.ONLY; // e.g. ONLY=lz4: just the images whose label starts with it
  for (const v of VARIANTS.filter((x) => only === undefined || x.label.startsWith(only))) {
    const blocks = imageBlocks(v, source, content);
    const ratio = (blocks.compressedBytes / blocks.decodedBytes).toFixed(3);
    const cands = candidates(v);
    measureAll(cands, blocks).forEach((res, k) => {
      const image = `${v.label} (${blocks.raw.length} blocks${blocks.storedRaw ? `, ${blocks.storedRaw} stored raw` : ''})`;
      rows.push([image, ratio, cands[k]!.name, median(res.cpu).toFixed(0), Math.max(...res.wall).toFixed(0)]);
      process.stdout.write(`${rows.at(-1)!.join(' | ')}\n`);
    });
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write('\n');
  for (const [n, r] of rows.entries()) {
    process.stdout.write(`| ${r.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |\n`);
    if (n === 0) process.stdout.write(`|${widths.map((w, i) => (i >= 3 ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|')}|\n`);
  }
}

main();
