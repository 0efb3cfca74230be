/**
 * Block decompressors against real mksquashfs output. Every image is built from generated files of
 * known content; the data blocks are located with a tiny parse that does not use our reader (the
 * inode table is stored uncompressed with -noI, so the file's basic-reg inode is read directly),
 * each block is decoded and compared with the source bytes. Metadata blocks are checked the same
 * way: the compressed inode table of an image built without -noI must decode to the uncompressed
 * inode table of the otherwise identical -noI image.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { prng } from '@atomfs/testkit';
import { DecompressError, UnsupportedImageError } from '../src/errors.js';
import {
  createDecompressor,
  GzipDecompressor,
  Lz4Decompressor,
  LzmaDecompressor,
  lzo1xDecompressSafe,
  LzoDecompressor,
  scanXzStream,
  scanZstdFrame,
  XzDecompressor,
  ZstdDecompressor,
  type Decompressor,
} from '../src/compression/index.js';
import { loadFzstd, loadLz4, loadLzma, loadZstd, tryRequire, type LzmaModule, type ZstdBinding } from '../src/compression/native.js';

const BLOCK_SIZE = 128 * 1024;
const METADATA_SIZE = 8192;
const FILE_SIZE = 300 * 1024;

/** Text-like bytes with random runs: compressible, but not trivially (ratio ~2-4 for most codecs). */
function semiCompressible(seed: number, size: number): Buffer {
  const rand = prng(seed);
  const words: string[] = [];
  for (let i = 0; i < 600; i++) {
    let w = '';
    const len = 2 + (rand() % 9);
    for (let j = 0; j < len; j++) w += String.fromCharCode(97 + (rand() % 20));
    words.push(w);
  }
  const out = Buffer.alloc(size);
  let p = 0;
  while (p < size) {
    if (rand() % 10 === 0) {
      const n = 1 + (rand() % 40);
      for (let i = 0; i < n && p < size; i++) out[p++] = rand() & 0xff;
    } else {
      p += out.write(words[rand() % words.length]! + ' ', p, 'latin1');
    }
  }
  return out;
}

/** x86-64 machine code (a slice of the node binary's .text), so -Xbcj x86 has something to filter. */
function x86Code(size: number): Buffer {
  const fd = openSync(process.execPath, 'r');
  try {
    const buf = Buffer.alloc(size);
    const n = readSync(fd, buf, 0, size, 8 << 20);
    assert.equal(n, size, 'node binary too small for an x86 code sample');
    return buf;
  } finally {
    closeSync(fd);
  }
}

interface Variant {
  label: string;
  id: number;
  args: string[];
  content: 'text' | 'x86';
}

const VARIANTS: Variant[] = [
  { label: 'gzip', id: 1, args: ['-comp', 'gzip'], content: 'text' },
  { label: 'lzma', id: 2, args: ['-comp', 'lzma'], content: 'text' },
  { label: 'lzo', id: 3, args: ['-comp', 'lzo'], content: 'text' },
  { label: 'lzo -Xalgorithm lzo1x_1', id: 3, args: ['-comp', 'lzo', '-Xalgorithm', 'lzo1x_1'], content: 'text' },
  { label: 'xz', id: 4, args: ['-comp', 'xz'], content: 'text' },
  { label: 'xz -Xbcj x86', id: 4, args: ['-comp', 'xz', '-Xbcj', 'x86'], content: 'x86' },
  { label: 'lz4', id: 5, args: ['-comp', 'lz4'], content: 'text' },
  { label: 'lz4 -Xhc', id: 5, args: ['-comp', 'lz4', '-Xhc'], content: 'text' },
  { label: 'zstd', id: 6, args: ['-comp', 'zstd'], content: 'text' },
];

interface Block {
  raw: Buffer;
  expected: Buffer;
}

interface Built {
  variant: Variant;
  options: Buffer | undefined;
  dataBlocks: Block[];
  /** Compressed inode-table metadata blocks (from the image without -noI) and their expected content. */
  metadataBlocks: Block[];
}

const u16 = (b: Buffer, o: number): number => b.readUInt16LE(o);
const u32 = (b: Buffer, o: number): number => b.readUInt32LE(o);
const u64 = (b: Buffer, o: number): number => Number(b.readBigUInt64LE(o));

/** Options payload (flag 0x0400: one uncompressed metadata block at 96). */
function compressionOptions(img: Buffer): Buffer | undefined {
  if ((u16(img, 24) & 0x0400) === 0) return undefined;
  const hdr = u16(img, 96);
  assert.ok(hdr & 0x8000, 'options block is stored uncompressed');
  return img.subarray(98, 98 + (hdr & 0x7fff));
}

/** The metadata blocks of the inode table: [header position, header, payload]. */
function inodeTableBlocks(img: Buffer): Array<{ compressed: boolean; payload: Buffer }> {
  const start = u64(img, 64);
  const end = u64(img, 72); // directory_table_start follows the inode table
  const blocks: Array<{ compressed: boolean; payload: Buffer }> = [];
  for (let p = start; p < end; ) {
    const hdr = u16(img, p);
    const len = hdr & 0x7fff;
    assert.ok(len > 0 && p + 2 + len <= end, `metadata block at ${p}`);
    blocks.push({ compressed: (hdr & 0x8000) === 0, payload: img.subarray(p + 2, p + 2 + len) });
    p += 2 + len;
  }
  return blocks;
}

function build(dir: string, variant: Variant, content: Buffer): Built {
  const src = join(dir, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'data.bin'), content);
  // Enough symlinks to spread the inode table over several full 8 KiB metadata blocks.
  for (let i = 0; i < 400; i++) symlinkSync(`target/${'x'.repeat(40 + (i % 50))}/${i}`, join(src, `link-${String(i).padStart(3, '0')}`));
  const common = ['-noappend', '-no-fragments', '-no-xattrs', '-b', String(BLOCK_SIZE), '-all-root', '-mkfs-time', '0', '-all-time', '0', '-quiet', '-no-progress'];
  const plainImg = join(dir, 'noI.sqfs');
  const compImg = join(dir, 'comp.sqfs');
  execFileSync('mksquashfs', [src, plainImg, ...variant.args, ...common, '-noI'], { stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync('mksquashfs', [src, compImg, ...variant.args, ...common], { stdio: ['ignore', 'ignore', 'inherit'] });
  const img = readFileSync(plainImg);
  const comp = readFileSync(compImg);
  assert.equal(u32(img, 0), 0x73717368, 'squashfs magic');
  assert.equal(u16(img, 20), variant.id, 'compressor id in the superblock');
  assert.equal(u32(img, 12), BLOCK_SIZE);

  // The -noI image: uncompressed inode table; the file's inode comes first (mksquashfs writes a
  // directory's entries, sorted by name, before the directory).
  const plainBlocks = inodeTableBlocks(img);
  assert.ok(plainBlocks.every((b) => !b.compressed), '-noI stores the inode table uncompressed');
  const table = Buffer.concat(plainBlocks.map((b) => b.payload));
  assert.equal(u16(table, 0), 2, 'first inode is a basic regular file');
  const startBlock = u32(table, 16);
  assert.equal(u32(table, 20), 0xffffffff, 'no fragment (-no-fragments)');
  assert.equal(u32(table, 28), content.length, 'file size in the inode');
  const dataBlocks: Block[] = [];
  let pos = startBlock;
  for (let i = 0; i * BLOCK_SIZE < content.length; i++) {
    const word = u32(table, 32 + 4 * i);
    assert.equal(word & (1 << 24), 0, `block ${i} is stored compressed`);
    const len = word & 0xffffff;
    assert.ok(len > 0 && len < BLOCK_SIZE, `block ${i} length ${len}`);
    dataBlocks.push({ raw: Buffer.from(img.subarray(pos, pos + len)), expected: content.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE) });
    pos += len;
  }

  // The image without -noI has the same inode table, compressed.
  const compBlocks = inodeTableBlocks(comp);
  assert.ok(compBlocks.length >= 3, 'inode table spans several metadata blocks');
  const metadataBlocks: Block[] = [];
  compBlocks.forEach((b, i) => {
    const expected = table.subarray(i * METADATA_SIZE, (i + 1) * METADATA_SIZE);
    if (b.compressed) metadataBlocks.push({ raw: Buffer.from(b.payload), expected });
    else assert.deepEqual(b.payload, expected);
  });
  assert.equal(compBlocks.length, Math.ceil(table.length / METADATA_SIZE));
  assert.ok(metadataBlocks.length >= 3, 'at least 3 compressed metadata blocks');
  return { variant, options: compressionOptions(img), dataBlocks, metadataBlocks };
}

/** Run `fn`; returns 'error' for a DecompressError, the Buffer otherwise; anything else fails the test. */
function outcome(fn: () => Buffer, maxOutput: number): Buffer | 'error' {
  try {
    const out = fn();
    assert.ok(Buffer.isBuffer(out), 'returns a Buffer');
    assert.ok(out.length <= maxOutput, `output ${out.length} within the ${maxOutput}-byte cap`);
    return out;
  } catch (err) {
    if (err instanceof DecompressError) return 'error';
    throw err; // a raw library error or a failed assertion
  }
}

/** Every decoder implementation available for a compressor id (native and fallback). */
function implementations(id: number, options: Buffer | undefined): Decompressor[] {
  const list: Decompressor[] = [createDecompressor(id, options)];
  if (id === 5 && list[0]!.implementation !== 'ts') list.push(new Lz4Decompressor(undefined));
  if (id === 5 && list[0]!.implementation === 'ts') list.push(new Lz4Decompressor(mustLoad(loadLz4())));
  if (id === 6) list.push(new ZstdDecompressor(undefined, mustLoad(loadFzstd())));
  return list;
}

function mustLoad<T>(l: { ok: true; module: T } | { ok: false; error: Error }): T {
  if (!l.ok) throw l.error;
  return l.module;
}

const root = mkdtempSync(join(tmpdir(), 'atomfs-compression-'));
after(() => rmSync(root, { recursive: true, force: true }));

const text = semiCompressible(7, FILE_SIZE);
const built = new Map<string, Built>();
before(() => {
  VARIANTS.forEach((v, i) => {
    const dir = join(root, String(i));
    mkdirSync(dir);
    built.set(v.label, build(dir, v, v.content === 'x86' ? x86Code(FILE_SIZE) : text));
  });
});

describe('real mksquashfs blocks decode to the source bytes', () => {
  for (const v of VARIANTS) {
    test(v.label, () => {
      const b = built.get(v.label)!;
      assert.equal(b.dataBlocks.length, 3); // 128 + 128 + 44 KiB
      for (const d of implementations(v.id, b.options)) {
        assert.equal(d.name, { 1: 'gzip', 2: 'lzma', 3: 'lzo', 4: 'xz', 5: 'lz4', 6: 'zstd' }[v.id]);
        for (const [i, blk] of b.dataBlocks.entries()) {
          const out = d.decompress(blk.raw, BLOCK_SIZE);
          assert.ok(out.equals(blk.expected), `${d.implementation}: data block ${i} (${out.length} bytes) matches the source`);
        }
        for (const [i, blk] of b.metadataBlocks.entries()) {
          const out = d.decompress(blk.raw, METADATA_SIZE);
          assert.ok(out.equals(blk.expected), `${d.implementation}: metadata block ${i} matches the -noI inode table`);
        }
      }
    });
  }

  test('xz -Xbcj x86 blocks really use the x86 BCJ filter', () => {
    const b = built.get('xz -Xbcj x86')!;
    const filters = b.dataBlocks.map((blk) => scanXzStream(blk.raw, BLOCK_SIZE).blocks[0]!.filters);
    assert.ok(filters.some((f) => f.length === 2 && f[0] === 0x04 && f[1] === 0x21), `filters: ${JSON.stringify(filters)}`);
    // and the plain xz image does not
    const plain = built.get('xz')!.dataBlocks.map((blk) => scanXzStream(blk.raw, BLOCK_SIZE).blocks[0]!.filters);
    assert.deepEqual(plain, [[0x21], [0x21], [0x21]]);
  });

  test('zstd frames from mksquashfs carry the content size', () => {
    for (const blk of built.get('zstd')!.dataBlocks) assert.equal(scanZstdFrame(blk.raw).contentSize, blk.expected.length);
  });

  test('native bindings load on this Node (incl. @napi-rs/lzma 1.5.3 on Node 20)', () => {
    for (const l of [loadLzma(), loadLz4(), loadZstd(), loadFzstd()]) assert.ok(l.ok, l.ok ? '' : l.error.message);
    assert.equal(createDecompressor(4).implementation, '@napi-rs/lzma');
    assert.equal(createDecompressor(5).implementation, 'lz4-napi');
    assert.equal(createDecompressor(6).implementation, 'zstd-napi');
    const missing = tryRequire('atomfs-no-such-module');
    assert.equal(missing.ok, false);
  });
});

describe('bad input gives DecompressError, never a raw error, a hang, or output past the cap', () => {
  test('unknown compressor ids', () => {
    for (const id of [0, 7, 65535]) assert.throws(() => createDecompressor(id), UnsupportedImageError);
  });

  test('invalid caps are caller bugs (RangeError)', () => {
    const d = createDecompressor(1);
    for (const cap of [0, -1, 1.5, NaN, 2 << 20]) assert.throws(() => d.decompress(Buffer.from([1, 2, 3]), cap), RangeError);
  });

  for (const v of VARIANTS) {
    test(`${v.label}: corrupt, truncated, random and over-cap blocks`, { timeout: 120_000 }, () => {
      const b = built.get(v.label)!;
      const rand = prng(0x5eed + v.id);
      const blk = b.dataBlocks[0]!;
      // zlib (adler32) and xz (CRC32) catch every flipped byte. lzma is decoded with its known size,
      // so damage in the last bytes of the range-coded stream can go unnoticed (see lzma.ts); lz4,
      // lzo and zstd blocks carry no checksum at all.
      const strong = v.id === 1 || v.id === 4;
      for (const d of implementations(v.id, b.options)) {
        const tag = `${v.label} (${d.implementation})`;
        // empty
        assert.equal(outcome(() => d.decompress(Buffer.alloc(0), BLOCK_SIZE), BLOCK_SIZE), 'error', `${tag}: empty`);
        // a full block with a cap below its size
        assert.equal(outcome(() => d.decompress(blk.raw, BLOCK_SIZE / 2), BLOCK_SIZE / 2), 'error', `${tag}: over cap`);
        assert.equal(outcome(() => d.decompress(b.metadataBlocks[0]!.raw, METADATA_SIZE - 1), METADATA_SIZE), 'error', `${tag}: metadata over cap`);
        // truncated to half: every format but lz4 detects it (lz4 has no end marker or checksum)
        const half = outcome(() => d.decompress(blk.raw.subarray(0, blk.raw.length >> 1), BLOCK_SIZE), BLOCK_SIZE);
        if (v.id !== 5) assert.equal(half, 'error', `${tag}: truncated to half`);
        else assert.ok(half === 'error' || !half.equals(blk.expected), `${tag}: truncated to half`);
        // last byte cut: lzma decodes its known size before the end marker (harmless, correct data)
        const cut = outcome(() => d.decompress(blk.raw.subarray(0, blk.raw.length - 1), BLOCK_SIZE), BLOCK_SIZE);
        if (v.id === 2) assert.ok(cut === 'error' || cut.equals(blk.expected), `${tag}: last byte cut`);
        else if (v.id !== 5) assert.equal(cut, 'error', `${tag}: last byte cut`);
        // a byte appended
        const longer = outcome(() => d.decompress(Buffer.concat([blk.raw, Buffer.from([0x55])]), BLOCK_SIZE), BLOCK_SIZE);
        if (v.id !== 5 && v.id !== 1 && v.id !== 2) assert.equal(longer, 'error', `${tag}: trailing byte`);
        // random blocks
        for (let i = 0; i < 40; i++) {
          const junk = Buffer.alloc(1 + (rand() % 3000));
          for (let j = 0; j < junk.length; j++) junk[j] = rand() & 0xff;
          assert.equal(outcome(() => d.decompress(junk, BLOCK_SIZE), BLOCK_SIZE), 'error', `${tag}: random block ${i}`);
        }
        // single flipped bytes and random mutations of a real block
        let silent = 0;
        for (let i = 0; i < 150; i++) {
          const bad = Buffer.from(blk.raw);
          const flips = i < 60 ? 1 : 1 + (rand() % 8);
          for (let f = 0; f < flips; f++) bad[rand() % bad.length] ^= 1 + (rand() % 255);
          const r = outcome(() => d.decompress(bad, BLOCK_SIZE), BLOCK_SIZE);
          if (r !== 'error' && !r.equals(blk.expected)) silent++;
        }
        if (strong) assert.equal(silent, 0, `${tag}: a flipped byte went unnoticed`);
        if (v.id === 2) assert.ok(silent <= 10, `${tag}: ${silent} of 150 corruptions went unnoticed`);
        // cut at every length near the start (header parsing paths)
        for (let n = 1; n < Math.min(64, blk.raw.length); n++) {
          assert.equal(outcome(() => d.decompress(blk.raw.subarray(0, n), BLOCK_SIZE), BLOCK_SIZE), 'error', `${tag}: first ${n} bytes`);
        }
      }
    });
  }
});

describe('decompression bombs are refused without unbounded allocation', () => {
  const zeros = Buffer.alloc(64 << 20);

  test('gzip: 64 MiB of zeros', () => {
    const bomb = deflateSync(zeros, { level: 9 });
    assert.ok(bomb.length < BLOCK_SIZE);
    assert.throws(() => new GzipDecompressor().decompress(bomb, BLOCK_SIZE), (e: unknown) => e instanceof DecompressError && /limit/.test(e.message));
  });

  test('lzma: header size over the cap is rejected before decoding', () => {
    let calls = 0;
    const spy = { lzma: { decompressSync: () => (calls++, Buffer.alloc(0)) } } as unknown as LzmaModule;
    const header = Buffer.from([0x5d, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    for (const size of [BLOCK_SIZE + 1, 2 ** 40, 0xffff_ffff_ffff_ffffn]) {
      header.writeBigUInt64LE(BigInt(size), 5);
      assert.throws(() => new LzmaDecompressor(spy).decompress(header, BLOCK_SIZE), DecompressError);
    }
    assert.equal(calls, 0, 'the decoder never ran');
    // a real stream whose header lies (says 1000 bytes, holds 64 MiB): stops at the stated size
    const lib = mustLoad(loadLzma());
    const real = lib.lzma.compressSync(zeros.subarray(0, 8 << 20));
    real.writeBigUInt64LE(1000n, 5);
    const t0 = process.hrtime.bigint();
    const r = outcome(() => new LzmaDecompressor(lib).decompress(real, BLOCK_SIZE), BLOCK_SIZE);
    assert.ok(r === 'error' || r.length === 1000);
    assert.ok(Number(process.hrtime.bigint() - t0) / 1e6 < 2000, 'no decoding of the whole bomb');
    // with the "unknown size" marker squashfs-tools would decode it all; we refuse
    real.fill(0xff, 5, 13);
    assert.throws(() => new LzmaDecompressor(lib).decompress(real, BLOCK_SIZE), DecompressError);
  });

  test('xz: the LZMA2 chunk walk refuses before decoding', () => {
    const lib = mustLoad(loadLzma());
    const bomb = lib.xz.compressSync(zeros.subarray(0, 16 << 20));
    assert.ok(bomb.length < BLOCK_SIZE);
    let calls = 0;
    const spy = { xz: { decompressSync: () => (calls++, Buffer.alloc(0)) } } as unknown as LzmaModule;
    assert.throws(() => new XzDecompressor(spy).decompress(bomb, BLOCK_SIZE), (e: unknown) => e instanceof DecompressError && /limit/.test(e.message));
    assert.equal(calls, 0, 'the decoder never ran');
    // just over the cap, and exactly at it
    const over = lib.xz.compressSync(zeros.subarray(0, BLOCK_SIZE + 1));
    assert.throws(() => new XzDecompressor(lib).decompress(over, BLOCK_SIZE), DecompressError);
    const exact = lib.xz.compressSync(zeros.subarray(0, BLOCK_SIZE));
    assert.equal(new XzDecompressor(lib).decompress(exact, BLOCK_SIZE).length, BLOCK_SIZE);
    // trailing data / a second concatenated stream is refused
    assert.throws(() => new XzDecompressor(lib).decompress(Buffer.concat([exact, exact]), 2 * BLOCK_SIZE), DecompressError);
    assert.throws(() => new XzDecompressor(lib).decompress(Buffer.concat([exact, Buffer.alloc(4)]), BLOCK_SIZE), DecompressError);
  });

  test('lz4: 64 MiB of zeros', () => {
    const lz4 = mustLoad(loadLz4());
    const bomb = lz4.compressSync(zeros).subarray(4); // drop lz4-napi's size prefix: a raw block
    for (const d of [new Lz4Decompressor(lz4), new Lz4Decompressor(undefined)]) {
      assert.throws(() => d.decompress(bomb, BLOCK_SIZE), DecompressError, d.implementation);
    }
  });

  test('zstd: with a content size (rejected before decoding) and without one (bounded decode)', () => {
    const file = join(root, 'zeros.bin');
    writeFileSync(file, zeros.subarray(0, 16 << 20));
    const withSize = execFileSync('zstd', ['-q', '-c', '-19', file], { maxBuffer: 64 << 20 }); // a file: size known
    assert.equal(scanZstdFrame(withSize).contentSize, 16 << 20);
    let made = 0;
    const spy = { DCtx: class { constructor() { made++; } decompress(): number { throw new Error('must not run'); } } } as unknown as ZstdBinding;
    assert.throws(() => new ZstdDecompressor(spy).decompress(withSize, BLOCK_SIZE), (e: unknown) => e instanceof DecompressError && /limit/.test(e.message));
    assert.equal(made, 1);
    // zstd writes no content size when it reads a pipe
    const noSize = execFileSync('sh', ['-c', 'head -c 16777216 /dev/zero | zstd -q -c'], { maxBuffer: 64 << 20 });
    assert.equal(scanZstdFrame(noSize).contentSize, undefined);
    assert.throws(() => createDecompressor(6).decompress(noSize, BLOCK_SIZE), DecompressError);
    assert.throws(() => new ZstdDecompressor(undefined, mustLoad(loadFzstd())).decompress(noSize, BLOCK_SIZE), DecompressError);
    // a small frame without content size decodes on the native path
    const small = execFileSync('sh', ['-c', 'head -c 5000 /dev/zero | zstd -q -c']);
    assert.equal(scanZstdFrame(small).contentSize, undefined);
    assert.ok(createDecompressor(6).decompress(small, BLOCK_SIZE).equals(Buffer.alloc(5000)));
    // two frames in one block are refused
    assert.throws(() => createDecompressor(6).decompress(Buffer.concat([small, small]), BLOCK_SIZE), DecompressError);
  });

  test('lzo: a long overlapping match past the cap', () => {
    // 4 literals (first byte 17 + 4), an M3 match of distance 4 whose length is extended by 1000
    // zero bytes (255 each), then the end-of-stream marker 11 00 00.
    const stream = Buffer.concat([Buffer.from([21, 0x61, 0x62, 0x63, 0x64, 0x20]), Buffer.alloc(1000), Buffer.from([1, 3 << 2, 0, 0x11, 0, 0])]);
    assert.throws(() => new LzoDecompressor().decompress(stream, BLOCK_SIZE), (e: unknown) => e instanceof DecompressError && /output overrun/.test(e.message));
    // the same stream with a short length decodes, with an output buffer that is exactly full
    const ok = Buffer.from([21, 0x61, 0x62, 0x63, 0x64, 0x20, 5, 3 << 2, 0, 0x11, 0, 0]);
    const len = 4 + 31 + 5 + 2;
    assert.equal(new LzoDecompressor().decompress(ok, BLOCK_SIZE).toString('latin1'), 'abcd'.repeat(11).slice(0, len));
    assert.equal(lzo1xDecompressSafe(ok, new Uint8Array(len)), len);
    assert.throws(() => lzo1xDecompressSafe(ok, new Uint8Array(len - 1)), /output overrun/);
    // distance past the start of the output
    const far = Buffer.from([21, 0x61, 0x62, 0x63, 0x64, 0x20 | 1, 4 << 2, 0, 0x11, 0, 0]);
    assert.throws(() => new LzoDecompressor().decompress(far, BLOCK_SIZE), /lookbehind overrun/);
  });
});
