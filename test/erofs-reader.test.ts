/**
 * Issue 18: for every mkfs.erofs option erofs-utils offers here, what our erofs reader sees
 * equals the kernel's own erofs mount of the same image (every field of every entry, file
 * contents by sha256, xattrs, hard links), `fsck.erofs --extract` output, and — for the options
 * that keep everything — the source tree itself.
 */
import assert from 'node:assert/strict';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Erofs, erofsTree, FileSource } from '@atomfs/erofs';
import { compareSnapshots, generateTree, makeTempDir, processCleanup, run, snapshotDir, withLoopMount, type Snapshot } from './lib/index.js';
import { dropLongNames, erofsImagePath, mkfsErofs } from './erofs-images.js';
import { snapshotTree } from './image-snapshot.js';

interface ErofsVariant {
  name: string;
  options: string[];
  /** Keeps every field of the source (mtimes, owners, xattrs): compared with the source tree too. */
  faithful: boolean;
}

/** Every compressor and layout option of erofs-utils 1.5 (lz4 and lz4hc are all it has). */
const VARIANTS: ErofsVariant[] = [
  { name: 'uncompressed', options: [], faithful: true },
  { name: 'noinline', options: ['-Enoinline_data'], faithful: true },
  // Compact inodes hold 16-bit owners and one mtime (the build time): mkfs refuses the tree's big uids.
  { name: 'compact-inodes', options: ['-Eforce-inode-compact', '--force-uid=1000', '--force-gid=100', '-zlz4hc'], faithful: false },
  { name: 'extended-inodes', options: ['-Eforce-inode-extended'], faithful: true },
  { name: 'lz4', options: ['-zlz4'], faithful: true },
  { name: 'lz4hc', options: ['-zlz4hc'], faithful: true },
  { name: 'lz4hc-12', options: ['-zlz4hc,12'], faithful: true },
  { name: 'lz4hc-1-ztailpacking', options: ['-zlz4hc,1', '-Eztailpacking'], faithful: true },
  { name: 'lz4-ztailpacking', options: ['-zlz4', '-Eztailpacking'], faithful: true },
  { name: 'lz4hc-bigpcluster', options: ['-zlz4hc', '-C65536'], faithful: true },
  { name: 'lz4-bigpcluster-ztailpacking', options: ['-zlz4', '-C16384', '-Eztailpacking'], faithful: true },
  { name: 'lz4-legacy-index', options: ['-zlz4', '-Elegacy-compress'], faithful: true },
  { name: 'lz4hc-legacy-bigpcluster', options: ['-zlz4hc', '-Elegacy-compress', '-C32768'], faithful: true },
  { name: 'lz4-max-extent', options: ['-zlz4', '--max-extent-bytes=16384'], faithful: true },
  { name: 'chunks-4k', options: ['--chunksize=4096'], faithful: true },
  { name: 'chunks-64k-indexes', options: ['--chunksize=65536', '-Eforce-chunk-indexes'], faithful: true },
  { name: 'chunks-1m-blockmap', options: ['--chunksize=1048576', '-Eforce-inode-blockmap'], faithful: true },
  { name: 'fixed-time-owners', options: ['-zlz4', '-T1000000000', '--force-uid=1234', '--force-gid=5678'], faithful: false },
  { name: 'all-root-no-xattrs', options: ['--all-root', '-x-1', '-Eforce-inode-compact'], faithful: false },
];

let work: string;
let src: string;
let source: Snapshot;

before(async () => {
  work = makeTempDir('erofs-reader', processCleanup);
  src = join(work, 'src');
  await generateTree(src, { medium: true });
  dropLongNames(src);
  // Deep and big directories: a 40-level chain and 3000 entries (many directory blocks).
  let deep = join(src, 'deep-erofs');
  for (let i = 0; i < 40; i++) deep = join(deep, `level-${i}`);
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'leaf'), 'deep\n');
  mkdirSync(join(src, 'big-dir'));
  for (let i = 0; i < 3000; i++) writeFileSync(join(src, 'big-dir', `entry-${String(i).padStart(5, '0')}-${'x'.repeat(i % 40)}`), `${i}\n`);
  source = await snapshotDir(src);
});
after(() => processCleanup.run());

function ourSnapshot(image: string): Snapshot {
  const fs = new Erofs(new FileSource(image));
  try {
    return snapshotTree(erofsTree(fs));
  } finally {
    fs.close();
  }
}

/** Images are built two at a time (mkfs.erofs with lz4hc takes seconds) while earlier ones are compared. */
const builds = new Map<string, Promise<string>>();
function buildAll(): void {
  const queue = [...VARIANTS];
  const chain: Promise<unknown>[] = [Promise.resolve(), Promise.resolve()];
  queue.forEach((v, i) => {
    const slot = i % 2;
    const p = chain[slot]!.catch(() => undefined).then(() => mkfsErofs(src, erofsImagePath(work, v.name), v.options));
    p.catch(() => undefined);
    chain[slot] = p;
    builds.set(v.name, p);
  });
}

describe('erofs reader equals the kernel erofs mount', () => {
  before(buildAll);
  for (const v of VARIANTS) {
    test(v.name, async () => {
      const image = await builds.get(v.name)!;
      const ours = ourSnapshot(image);
      const kernel = await withLoopMount(image, (mp) => snapshotDir(mp), { fsType: 'erofs' });
      assert.deepEqual(compareSnapshots(kernel, ours), [], 'reader vs kernel erofs mount');
      if (v.faithful) assert.deepEqual(compareSnapshots(source, ours), [], 'reader vs source tree');
      if (v.name === 'fixed-time-owners') {
        for (const e of ours.values()) assert.ok(e.mtime === 1000000000 && e.uid === 1234 && e.gid === 5678, `${e.path}: -T and --force-uid/gid`);
      }
      // Every byte of the image is data the tests read: no trailing garbage, a block-multiple size.
      assert.equal(statSync(image).size % 4096, 0);
    });
  }
});

describe('erofs reader equals fsck.erofs --extract', () => {
  for (const name of ['lz4hc', 'lz4-ztailpacking', 'chunks-4k']) {
    test(name, async () => {
      const v = VARIANTS.find((x) => x.name === name)!;
      const image = await builds.get(v.name)!;
      const out = join(work, `fsck-${v.name}.d`);
      await run(['fsck.erofs', `--extract=${out}`, image], { timeoutMs: 300_000 });
      const extracted = await snapshotDir(out);
      // fsck.erofs 1.5 writes contents, modes, owners and mtimes; no xattrs, and its own link
      // counts; it chowns after chmod, which clears setuid/setgid (the kernel test covers those).
      const ignorePaths = (k: string): boolean => k === '/' || k.startsWith('/perms/setuid') || k.startsWith('/perms/setgid');
      assert.deepEqual(compareSnapshots(extracted, ourSnapshot(image), { ignore: ['xattrs', 'nlink', 'dirNlink', 'linkGroup'], ignorePaths }), []);
    });
  }
});
