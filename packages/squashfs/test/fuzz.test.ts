import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanup, prng, smallTree, tempDir } from '@atomfs/testkit';
import { SquashfsError } from '../src/index.js';
import { mksquashfs, readEverything } from './helpers.js';

/**
 * Bounded mutation fuzzing of real mksquashfs images (fixed seed: reproducible in CI).
 * FUZZ_CASES and FUZZ_SEED make longer runs on demand. Every case must either read fine or
 * fail with a SquashfsError; any other exception, a hang or runaway memory is a bug.
 */
const CASES = Number(process.env.FUZZ_CASES ?? 3000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261125);

let dir: string;
const images: { name: string; buf: Buffer }[] = [];

before(() => {
  dir = tempDir('fuzz');
  smallTree(join(dir, 'src'), 'squashfs', 120);
  const variants: [string, string[]][] = [
    ['gzip', ['-comp', 'gzip', '-b', '4096']],
    ['plain', ['-comp', 'gzip', '-noI', '-noD', '-noF', '-noX', '-b', '4096']],
    ['xz', ['-comp', 'xz', '-b', '8192']],
    ['zstd', ['-comp', 'zstd']],
    ['lz4', ['-comp', 'lz4']],
    ['lzo', ['-comp', 'lzo']],
  ];
  for (const [name, args] of variants) {
    const out = join(dir, `${name}.sqfs`);
    mksquashfs(join(dir, 'src'), out, args);
    const buf = readFileSync(out);
    images.push({ name, buf: buf.subarray(0, Number(buf.readBigUInt64LE(40))) });
  }
});
after(() => cleanup(dir));

test(`fuzz: ${CASES} mutated images never crash, hang or run away`, { timeout: 10 * 60_000 }, () => {
  const rand = prng(SEED);
  let failedTyped = 0;
  let slowest = 0;
  const rssStart = process.memoryUsage().rss;
  for (let i = 0; i < CASES; i++) {
    const { name, buf } = images[i % images.length]!;
    const b = Buffer.from(buf);
    const inodeStart = Number(b.readBigUInt64LE(64));
    const flips = 1 + (rand() % 6);
    for (let f = 0; f < flips; f++) {
      // Half the mutations hit the tables (inode table onwards) and the superblock, where
      // structure lives; the rest anywhere, including compressed data blocks.
      const r = rand() % 4;
      const pos = r === 0 ? rand() % 96 : r === 1 ? inodeStart + (rand() % (b.length - inodeStart)) : rand() % b.length;
      const kind = rand() % 3;
      if (kind === 0) b[pos] = rand() & 0xff;
      else if (kind === 1) b[pos] = b[pos]! ^ (1 << rand() % 8);
      else b[pos] = [0, 0xff, 0x7f, 0x80][rand() % 4]!;
    }
    const t0 = performance.now();
    try {
      readEverything(b);
    } catch (err) {
      if (!(err instanceof SquashfsError)) {
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
