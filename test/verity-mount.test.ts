/**
 * Issue 5 acceptance: tampered layers of a mounted image never give wrong bytes.
 *
 * A two-layer image (stacker format: squashfs + veritysetup data, root hashes in the annotations)
 * gets seeded single-bit flips in every part of a layer file: the squashfs superblock, data
 * blocks, inode/directory/other tables, the padding, the verity superblock, the hash tree levels.
 * For each flip, on a copy of the layout:
 *  - `veritysetup verify` and `atomfs verify OCIDIR:TAG` agree on pass/fail;
 *  - `atomfs mount` is refused with one line naming the layer, or it mounts and every lstat /
 *    read / readlink / readdir of every path of the untampered image (the kernel's overlay of
 *    the kernel's squashfs mounts is the truth) gives EIO or exactly the original;
 *  - everything the kernel's squashfs shows differently when the whole damaged 4 KiB block is
 *    garbage (it reads without verity) fails with EIO through our mount: those are the files in
 *    the damaged block;
 *  - `atomfs verify MOUNTPOINT` says CORRUPTION FOUND for the layer, the server keeps serving.
 * One flip is also checked as a non-root user in a user namespace.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compareSnapshots, makeTempDir, readMountinfo, snapshotDir, useCleanup } from './lib/index.js';
import {
  TAG,
  PREFIX,
  ociDir,
  layers,
  truth,
  atomfs,
  text,
  registerMountCleanup,
  FlipCase,
  makeCases,
  Outcome,
  runCase,
  setupVerityFixture,
  teardownVerityFixture,
} from './verity-mount-fixture.js';

before(() => setupVerityFixture('vm'));
after(() => teardownVerityFixture());

test('the untampered image mounts and equals the kernel overlay of the kernel squashfs mounts', async (t) => {
  const stack = useCleanup(t);
  const dir = makeTempDir(`${PREFIX}-base`, stack);
  const mp = join(dir, 'mp');
  const runDir = join(dir, 'run');
  mkdirSync(mp);
  registerMountCleanup(stack, mp, runDir, dir);
  const m = await atomfs(['mount', '--metadir', runDir, `${ociDir}:${TAG}`, mp]);
  assert.equal(m.status, 0, text(m.stderr));
  assert.equal(readMountinfo().find((x) => x.mountpoint === mp)?.fstype, 'fuse.atomfs');
  const ours = await snapshotDir(mp);
  // Merged directories: overlayfs counts links its own way; inode numbers are not compared.
  assert.deepEqual(compareSnapshots(truth, ours, { ignore: ['dirNlink'] }), []);
  const v = await atomfs(['verify', '--metadir', runDir, mp]);
  assert.equal(v.status, 0, text(v.stdout) + text(v.stderr));
  assert.equal(text(v.stdout), layers.map((l) => `${l.digest}: OK\n`).reverse().join(''));
  const u = await atomfs(['umount', '--metadir', runDir, mp]);
  assert.equal(u.status, 0, text(u.stderr));
});

// Three at a time: much of a case is waiting (server start-up and exit), not CPU.
describe('single-bit flips (seeded)', { concurrency: 3 }, () => {
  const outcomes = new Map<number, Outcome & { c: FlipCase }>();
  let cases: FlipCase[] = [];
  before(() => {
    cases = makeCases();
  });
  // The cases only exist once the image is built; node:test needs the tests declared now.
  for (let i = 0; i < 40; i++) {
    test(`flip ${i}`, { timeout: 120_000 }, async (t) => {
      const c = cases[i];
      if (c === undefined) {
        assert.equal(i, cases.length, 'case list shorter than declared');
        t.skip('no such case');
        return;
      }
      t.diagnostic(`${layers[c.layer]!.name} ${c.region} offset ${c.offset} bit ${c.bit}`);
      outcomes.set(i, { c, ...(await runCase(t, c)) });
    });
  }
  after(() => {
    const lines = [...outcomes.values()].map(
      (o) => `${layers[o.c.layer]!.name.padEnd(4)} ${o.c.region.padEnd(16)} @${o.c.offset}.${o.c.bit}: ${o.refused ? 'refused' : `mounted, ${o.eio} EIO paths, kernel-damaged ${o.kernelDamaged}`}`,
    );
    process.stderr.write(`verity flips:\n  ${lines.join('\n  ')}\n`);
    assert.equal(cases.length, 40, 'forty cases');
  });
});

