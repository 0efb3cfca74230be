/**
 * The byte-bounded LRU and the recycling of decoded block buffers (SquashfsOptions.reuseBlockBuffers).
 * Recycling overwrites buffers in place, so the reader's output is checked against the files
 * mksquashfs was given, through caches small enough that nearly every block is evicted and reused.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { walkTree } from '@atomfs/tree';
import { cleanup, prng, randomBytes, smallTree, tempDir } from '@atomfs/testkit';
import { ByteLru, SquashFS, squashfsTree } from '../src/index.js';
import { mksquashfs } from './helpers.js';

describe('ByteLru', () => {
  test('stays within its byte budget and reports each evicted value once', () => {
    const evicted: number[] = [];
    const c = new ByteLru<number, number>(1000, (v) => evicted.push(v));
    for (let i = 0; i < 500; i++) {
      c.set(i, i, 10 + (i % 7) * 10);
      assert.ok(c.costUsed <= 1000, `used ${c.costUsed} after set ${i}`);
    }
    const kept = [...Array(500).keys()].filter((i) => c.get(i) !== undefined);
    assert.equal(new Set([...kept, ...evicted]).size, 500, 'every value is kept or was evicted');
    assert.equal(kept.length + evicted.length, 500, 'no value evicted twice');
    assert.ok(kept.includes(499), 'the newest entry is kept');
  });

  test('an entry read recently survives while older ones go', () => {
    const c = new ByteLru<string, string>(100);
    c.set('hot', 'h', 10);
    for (let i = 0; i < 50; i++) {
      c.set(`cold${i}`, 'c', 10);
      assert.equal(c.get('hot'), 'h', `hot entry lost after ${i} inserts`);
    }
    assert.equal(c.get('cold0'), undefined);
  });

  test('a value larger than the budget is not kept and not reported evicted', () => {
    const evicted: string[] = [];
    const c = new ByteLru<string, string>(100, (v) => evicted.push(v));
    c.set('a', 'a', 50);
    c.set('big', 'big', 101);
    assert.equal(c.get('big'), undefined);
    assert.equal(c.get('a'), 'a');
    assert.deepEqual(evicted, []);
  });

  test('replacing a key reports the old value', () => {
    const evicted: string[] = [];
    const c = new ByteLru<string, string>(100, (v) => evicted.push(v));
    c.set('k', 'old', 10);
    c.set('k', 'new', 10);
    assert.deepEqual(evicted, ['old']);
    assert.equal(c.get('k'), 'new');
    assert.equal(c.costUsed, 10);
  });
});

describe('reuseBlockBuffers', () => {
  let dir: string;
  let src: string;
  const images: Record<string, string> = {};

  before(() => {
    dir = tempDir('reuse');
    src = join(dir, 'src');
    smallTree(src, 'squashfs', 120);
    const rand = prng(7);
    // Several files of several blocks each, with distinct content, plus an uncompressible one
    // (stored uncompressed by mksquashfs) and tails that land in shared fragment blocks.
    for (let i = 0; i < 6; i++) writeFileSync(join(src, `multi-${i}.bin`), Buffer.concat([randomBytes(rand, 1000), Buffer.alloc(300_000 + i * 4099, 65 + i)]));
    writeFileSync(join(src, 'noise.bin'), randomBytes(rand, 150_000));
    images.zstd = join(dir, 'zstd.sqfs');
    mksquashfs(src, images.zstd, ['-comp', 'zstd', '-b', '65536']);
    images.gzip = join(dir, 'gzip.sqfs');
    mksquashfs(src, images.gzip, ['-comp', 'gzip', '-b', '65536']);
  });
  after(() => cleanup(dir));

  for (const comp of ['zstd', 'gzip']) {
    test(`${comp}: interleaved reads through a 2-block cache return the source bytes`, () => {
      const img = SquashFS.open(images[comp]!, { reuseBlockBuffers: true, dataCacheBytes: 2 * 65536 + 256 });
      try {
        const files = [...walkTree(squashfsTree(img), '/')].filter((e) => e.node.kind === 'file');
        assert.ok(files.length >= 10);
        const want = new Map(files.map((e) => [e.path, readFileSync(join(src, e.path))]));
        const dst = Buffer.alloc(200_000);
        // Round-robin over all files, 50,000 bytes at a time, so blocks of different files
        // keep evicting (and recycling) each other between the reads of one file.
        for (let pos = 0; pos < 400_000; pos += 50_000) {
          for (const e of files) {
            const expect = want.get(e.path)!.subarray(pos, pos + 50_000);
            const got = img.read(e.node, pos, 50_000);
            assert.ok(got.equals(expect), `${e.path} read at ${pos}`);
            const n = img.readInto(e.node, pos, 50_000, dst);
            assert.equal(n, expect.length);
            assert.ok(dst.subarray(0, n).equals(expect), `${e.path} readInto at ${pos}`);
          }
        }
      } finally {
        img.close();
      }
    });
  }

  test('without the option a returned block stays valid after many other reads', () => {
    const img = SquashFS.open(images.zstd!, { dataCacheBytes: 65536 + 256 });
    try {
      const files = [...walkTree(squashfsTree(img), '/')].flatMap((e) => (e.node.kind === 'file' && e.node.fileSize > 100_000 ? [e.node] : []));
      assert.ok(files.length >= 3);
      const first = img.read(files[0]!, 0, 1000);
      const copy = Buffer.from(first);
      for (const f of files) img.read(f, 0, f.fileSize);
      assert.ok(first.equals(copy));
    } finally {
      img.close();
    }
  });
});

describe('one memory budget for an image (cacheBytes)', () => {
  let dir: string;
  let img: string;
  before(async () => {
    dir = tempDir('budget');
    const src = join(dir, 'src');
    smallTree(src, 'squashfs', 120);
    const rand = prng(7);
    for (let i = 0; i < 40; i++) writeFileSync(join(src, `big-${i}.bin`), randomBytes(rand, 300_000));
    img = join(dir, 'img.sqfs');
    await mksquashfs(src, img, ['-comp', 'gzip', '-b', '65536']);
  });
  after(() => cleanup(dir));

  function readAll(fs: SquashFS): number {
    let total = 0;
    for (const e of walkTree(squashfsTree(fs), '/')) if (e.node.kind === 'file') total += fs.read(e.node, 0, e.node.fileSize).length;
    return total;
  }
  const used = (fs: SquashFS) => Object.values(fs.cacheUse()).reduce((a, b) => a + b, 0);

  test('all the caches together stay within cacheBytes; the default budget holds more (control)', () => {
    const small = SquashFS.open(img, { cacheBytes: 1 << 20 });
    const big = SquashFS.open(img);
    try {
      assert.equal(readAll(small), readAll(big));
      assert.ok(used(small) <= 1 << 20, `within 1 MiB: ${JSON.stringify(small.cacheUse())}`);
      assert.ok(used(big) > 1 << 20, `control: the default keeps more: ${JSON.stringify(big.cacheUse())}`);
      assert.ok(used(big) <= 48 << 20);
    } finally {
      small.close();
      big.close();
    }
  });
});
