/**
 * Issue 2 acceptance: for every mksquashfs variant, what our reader sees equals the source tree
 * and the kernel's own loop mount, and `extract` output equals `unsquashfs -d` output.
 */
import assert from 'node:assert/strict';
import { closeSync, linkSync, mkdirSync, openSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { extract, SquashFS, squashfsTree } from '@atomfs/squashfs';
import {
  compareSnapshots,
  expectedFromSource,
  generateTree,
  imageCache,
  makeTempDir,
  processCleanup,
  run,
  snapshotDir,
  unsquashfsTo,
  VARIANTS,
  variantByName,
  withLoopMount,
  type Snapshot,
  type Variant,
} from './lib/index.js';
import { ATOMFS_BIN } from './atomfs-cli.js';
import { snapshotTree } from './image-snapshot.js';

let work: string;
let src: string;
let source: Snapshot;

before(async () => {
  work = makeTempDir('reader', processCleanup);
  src = join(work, 'src');
  await generateTree(src, { medium: true });
  source = await snapshotDir(src);
});
after(() => processCleanup.run());

async function check(variant: Variant, tree: string, truth: Snapshot): Promise<void> {
  const { file: image } = await imageCache.get(tree, variant);
  const fs = SquashFS.open(image);
  let ours: Snapshot;
  try {
    ours = snapshotTree(squashfsTree(fs));
  } finally {
    fs.close();
  }
  assert.deepEqual(compareSnapshots(expectedFromSource(truth, variant), ours), [], 'reader vs source tree');
  if (variant.kernelMountable) {
    const kernel = await withLoopMount(image, (mp) => snapshotDir(mp));
    // Directory sizes differ between filesystems; squashfs reports listing bytes + 3 like the kernel.
    assert.deepEqual(compareSnapshots(kernel, ours), [], 'reader vs kernel loop mount');
    for (const [k, e] of kernel) if (e.type === 'dir') assert.equal(ours.get(k)!.size, e.size, `dir size of ${k}`);
  }
}

describe('squashfs reader equals source tree and kernel mount', () => {
  for (const variant of VARIANTS) {
    test(variant.name, { timeout: 300_000 }, () => check(variant, src, source));
  }
});

describe('extract equals unsquashfs -d', () => {
  for (const name of ['gzip-128K', 'zstd-4K', 'xz-bcj-x86', 'lzma-128K', 'lzo-128K', 'lz4-128K']) {
    test(name, { timeout: 300_000 }, async () => {
      const variant = variantByName(name);
      const { file: image } = await imageCache.get(src, variant);
      const a = join(work, `x-ours-${name}`);
      const b = join(work, `x-unsq-${name}`);
      const fs = SquashFS.open(image);
      try {
        await extract(fs, a);
      } finally {
        fs.close();
      }
      await unsquashfsTo(image, b);
      const [ours, theirs] = await Promise.all([snapshotDir(a), snapshotDir(b)]);
      assert.ok(ours.size >= 700, `the tree is not trivially small (${ours.size} entries)`);
      assert.deepEqual(compareSnapshots(theirs, ours), []);
      assert.deepEqual(compareSnapshots(expectedFromSource(source, variant), ours, { ignore: ['dirNlink'] }), []);
    });
  }
});

describe('files larger than 4 GiB', () => {
  test('a 4.5 GiB sparse file reads like the kernel and the source', { timeout: 600_000 }, async () => {
    const bigSrc = join(work, 'big');
    await generateTree(bigSrc, { big: true, medium: false });
    const truth = await snapshotDir(bigSrc);
    await check(variantByName('gzip-128K'), bigSrc, truth);
  });
});

describe('atomfs sqfs extract (the CLI, second decoding thread) equals unsquashfs -d', () => {
  // Over 16 MiB of image, so the command decodes ahead on its helper thread (a worker bundled
  // with the CLI): data blocks, sparse blocks and runs of tails in fragment blocks, hard links.
  let tree: string;
  before(() => {
    tree = join(work, 'cli-extract-src');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    let x = 12345;
    const noise = (n: number): Buffer => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
      return b;
    };
    writeFileSync(join(tree, 'a-big.bin'), Buffer.concat([noise(18 << 20), Buffer.alloc(70_000, 7)]));
    linkSync(join(tree, 'a-big.bin'), join(tree, 'sub', 'big-link.bin'));
    const fd = openSync(join(tree, 'sparse.bin'), 'w');
    writeSync(fd, noise(100_000), 0, 100_000, 4 << 20);
    closeSync(fd);
    for (let i = 0; i < 400; i++) writeFileSync(join(tree, 'sub', `s${i}`), `line ${i}\n`.repeat((i * 97) % 2500));
    writeFileSync(join(tree, 'z-mid.bin'), Buffer.concat([noise(300_000), Buffer.from('end\n')]));
  });

  for (const comp of ['zstd', 'xz', 'lz4']) {
    test(comp, { timeout: 300_000 }, async () => {
      const image = join(work, `cli-extract-${comp}.sqfs`);
      await run(['mksquashfs', tree, image, '-comp', comp, '-noappend', '-quiet', '-no-progress']);
      assert.ok(statSync(image).size >= 16 << 20, 'large enough for the helper thread');
      const a = join(work, `cli-x-ours-${comp}`);
      const b = join(work, `cli-x-unsq-${comp}`);
      const r = await run([process.execPath, ATOMFS_BIN, 'sqfs', 'extract', image, a]);
      assert.match(r.stderr.toString(), /extracted 403 files, 2 directories, 0 symlinks, 1 hard links/);
      await unsquashfsTo(image, b);
      const [ours, theirs] = await Promise.all([snapshotDir(a), snapshotDir(b)]);
      assert.deepEqual(compareSnapshots(theirs, ours), []);
      assert.ok(statSync(join(a, 'sparse.bin')).blocks * 512 < 1 << 20, 'sparse.bin stays sparse');
    });
  }
});
