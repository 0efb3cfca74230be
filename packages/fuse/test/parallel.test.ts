/**
 * Many readers at once through read workers: 16 processes hashing every file (half of them
 * with O_DIRECT so each read really reaches the server), plus in-process async readers.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { FuseServer } from '../src/index.js';
import { fuseMountsUnder, makeTempDir, MEMFS_MODULE, removeTempDir, runOk } from './helpers.js';
import { buildNodes, type FileSpec, fileSha256, standardTree } from './memfs.js';

const files = buildNodes(standardTree()).filter((n) => n.spec.type === 'file' && !n.spec.fail && n.attr.mode & 0o004);
const big = files.filter((n) => (n.spec as FileSpec).size > 256 * 1024);
const expected = new Map(files.map((n) => [n.path, fileSha256(n.spec as FileSpec)]));

let dir = '';
let mp = '';
let server: FuseServer | undefined;

before(async () => {
  dir = makeTempDir();
  mp = join(dir, 'mnt');
  mkdirSync(mp);
  server = await FuseServer.mount({ mountpoint: mp, fs: { module: MEMFS_MODULE, options: {} }, readWorkers: 2 });
});

after(async () => {
  try {
    await server?.unmount();
  } finally {
    await removeTempDir(dir);
  }
  assert.deepEqual(fuseMountsUnder(dir), []);
});

function parseSums(out: string): Map<string, string> {
  return new Map(
    out
      .trim()
      .split('\n')
      .map((l) => [l.slice(66).slice(mp.length + 1), l.slice(0, 64)] as [string, string]),
  );
}

it('16 parallel processes hashing all files (8 of them with O_DIRECT) get the right sums', async () => {
  const before = server!.stats();
  const jobs: Promise<void>[] = [];
  for (let i = 0; i < 16; i++) {
    // Each reader walks the files in a different order.
    const order = [...files.slice(i * 7 % files.length), ...files.slice(0, i * 7 % files.length)];
    if (i % 2 === 0) {
      jobs.push(
        runOk('sha256sum', order.map((n) => join(mp, n.path))).then((out) => {
          const sums = parseSums(out);
          for (const n of files) assert.equal(sums.get(n.path), expected.get(n.path), `reader ${i}: ${n.path}`);
        }),
      );
    } else {
      const script = big.map((n) => `dd if='${join(mp, n.path)}' iflag=direct bs=1M status=none | sha256sum`).join('; ');
      jobs.push(
        runOk('sh', ['-c', script]).then((out) => {
          const sums = out.trim().split('\n').map((l) => l.slice(0, 64));
          assert.deepEqual(sums, big.map((n) => expected.get(n.path)), `direct reader ${i}`);
        }),
      );
    }
  }
  await Promise.all(jobs);
  const after = server!.stats();
  assert.ok(after.forwardedReads - before.forwardedReads >= 8 * big.length, 'direct reads went through the read workers');
  assert.equal(after.failures, 0);
});

it('16 concurrent in-process async readers get the right content', async () => {
  const hashes = await Promise.all(
    Array.from({ length: 16 }, async (_, i) => {
      const n = big[i % big.length]!;
      return [n.path, createHash('sha256').update(await readFile(join(mp, n.path))).digest('hex')] as const;
    }),
  );
  for (const [path, hash] of hashes) assert.equal(hash, expected.get(path), path);
});
