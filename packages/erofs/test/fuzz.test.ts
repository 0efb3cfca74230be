import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanup, prng, smallTree, tempDir } from '@atomfs/testkit';
import { ErofsError } from '../src/index.js';
import { mkfsErofs, readEverything } from './helpers.js';

/**
 * Bounded mutation fuzzing of real mkfs.erofs images (fixed seed: reproducible in CI).
 * FUZZ_CASES and FUZZ_SEED make longer runs on demand. Every case must either read fine or
 * fail with an ErofsError; any other exception, a hang or runaway memory is a bug.
 */
const CASES = Number(process.env.FUZZ_CASES ?? 3000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261207);

let dir: string;
const images: { name: string; buf: Buffer }[] = [];

before(() => {
  dir = tempDir('erofs-fuzz');
  smallTree(join(dir, 'src'), 'erofs');
  // Without the superblock checksum, so that mutated superblock fields reach the reader.
  const variants: [string, string[]][] = [
    ['plain', ['-Enosbcrc']],
    ['lz4hc-tail', ['-zlz4hc', '-Eztailpacking', '-Enosbcrc']],
    ['lz4-legacy-big', ['-zlz4', '-Elegacy-compress', '-C16384', '-Enosbcrc']],
    ['lz4-big-compact', ['-zlz4', '-C16384']],
    ['chunks', ['--chunksize=8192', '-Eforce-chunk-indexes', '-Enosbcrc']],
    ['compact', ['-Eforce-inode-compact', '-zlz4', '-Enosbcrc', '--all-root']],
  ];
  for (const [name, args] of variants) {
    const out = join(dir, `${name}.erofs`);
    mkfsErofs(join(dir, 'src'), out, args);
    images.push({ name, buf: readFileSync(out) });
  }
  for (const { name, buf } of images) assert.ok(readEverything(buf) > 400_000, `${name} reads whole`);
});
after(() => cleanup(dir));

test(`fuzz: ${CASES} mutated erofs images never crash, hang or run away`, { timeout: 10 * 60_000 }, () => {
  const rand = prng(SEED);
  let failedTyped = 0;
  let slowest = 0;
  const rssStart = process.memoryUsage().rss;
  for (let i = 0; i < CASES; i++) {
    const { name, buf } = images[i % images.length]!;
    let b = Buffer.from(buf);
    const flips = 1 + (rand() % 6);
    for (let f = 0; f < flips; f++) {
      // A quarter hit the superblock, the rest anywhere (inodes, dirs, indexes, data).
      const pos = rand() % 4 === 0 ? 1024 + (rand() % 128) : rand() % b.length;
      const kind = rand() % 3;
      if (kind === 0) b[pos] = rand() & 0xff;
      else if (kind === 1) b[pos] = b[pos]! ^ (1 << rand() % 8);
      else b[pos] = [0, 0xff, 0x7f, 0x80][rand() % 4]!;
    }
    if (rand() % 20 === 0) b = b.subarray(0, rand() % b.length);
    const t0 = performance.now();
    try {
      readEverything(b);
    } catch (err) {
      if (!(err instanceof ErofsError)) {
        assert.fail(`case ${i} (${name}, seed ${SEED}): untyped ${(err as Error).name}: ${(err as Error).message}\n${(err as Error).stack}`);
      }
      failedTyped++;
    }
    slowest = Math.max(slowest, performance.now() - t0);
  }
  const growth = process.memoryUsage().rss - rssStart;
  process.stdout.write(`# fuzz: ${CASES} cases, ${failedTyped} typed errors, slowest case ${slowest.toFixed(0)} ms, rss growth ${(growth / 1048576).toFixed(0)} MiB\n`);
  assert.ok(failedTyped > CASES / 10, 'the mutations really break images (the test can fail)');
  assert.ok(slowest < 5000, `no case took more than 5 s (slowest ${slowest} ms)`);
  assert.ok(growth < 1024 << 20, 'memory stayed bounded');
});
