/**
 * Issue 2 acceptance: for every mksquashfs variant, what our reader sees equals the source tree
 * and the kernel's own loop mount, and `extract` output equals `unsquashfs -d` output.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { extract, SquashFS } from '@atomfs/squashfs';
import {
  compareSnapshots,
  expectedFromSource,
  generateTree,
  imageCache,
  makeTempDir,
  processCleanup,
  snapshotDir,
  unsquashfsTo,
  VARIANTS,
  variantByName,
  withLoopMount,
  type Snapshot,
  type Variant,
} from './lib/index.js';
import { snapshotImage } from './image-snapshot.js';

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
    ours = snapshotImage(fs);
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
