/**
 * Issue 18: `atomfs erofs info|ls|cat|extract|mount` on a mkfs.erofs image, each compared with
 * the kernel's own erofs loop mount of the same image (and `fsck.erofs --extract`).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  compareSnapshots,
  generateTree,
  isMounted,
  keyToPath,
  makeTempDir,
  processCleanup,
  readMountinfo,
  run,
  runSync,
  snapshotDir,
  useCleanup,
  withLoopMount,
  type Snapshot,
} from './lib/index.js';
import { ATOMFS_BIN } from './atomfs-cli.js';
import { dropLongNames, mkfsErofs } from './erofs-images.js';

let work: string;
let image: string;
let kernel: Snapshot;

const atomfs = (args: string[]) => run([process.execPath, ATOMFS_BIN, ...args], { allowFail: true, timeoutMs: 120_000 });

before(async () => {
  work = makeTempDir('erofs-cli', processCleanup);
  const src = join(work, 'src');
  await generateTree(src, { medium: false });
  dropLongNames(src);
  image = await mkfsErofs(src, join(work, 'img.erofs'), ['-zlz4hc', '-Eztailpacking']);
  kernel = await withLoopMount(image, (mp) => snapshotDir(mp), { fsType: 'erofs' });
});
after(() => processCleanup.run());

test('erofs info: the superblock facts', async () => {
  const r = await atomfs(['erofs', 'info', '--json', image]);
  assert.equal(r.status, 0, r.stderr.toString());
  const info = JSON.parse(r.stdout.toString()) as { blockSize: number; imageBytes: number; inodes: number; features: string[]; compressionAlgorithms: string[] };
  assert.equal(info.blockSize, 4096);
  assert.equal(info.imageBytes, statSync(image).size);
  assert.ok(info.features.includes('ztailpacking') && info.features.includes('0padding'));
  assert.deepEqual(info.compressionAlgorithms, ['lz4']);
  // dump.erofs (erofs-utils) counts the same inodes.
  const d = (await run(['dump.erofs', '-s', image])).stdout.toString();
  assert.equal(Number(/inode count:\s+(\d+)/.exec(d)![1]), info.inodes);
});

test('erofs ls --json: every entry with the kernel mount\'s lstat fields', async () => {
  const r = await atomfs(['erofs', 'ls', '--json', image]);
  assert.equal(r.status, 0, r.stderr.toString());
  const records = r.stdout.toString().trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>);
  assert.equal(records.length, kernel.size);
  await withLoopMount(
    image,
    (mp) => {
      for (const rec of records) {
        const p = rec.pathBase64 !== undefined ? Buffer.concat([Buffer.from(mp), Buffer.from(rec.pathBase64 as string, 'base64')]) : Buffer.from(mp + rec.path);
        const st = lstatSync(p);
        const want = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), nlink: st.nlink, inode: st.ino };
        for (const [k, v] of Object.entries(want)) assert.equal(rec[k], v, `${rec.path} ${k}`);
        if (!st.isDirectory()) assert.equal(rec.size, st.isCharacterDevice() || st.isBlockDevice() ? 0 : st.size, `${rec.path} size`);
      }
    },
    { fsType: 'erofs' },
  );
});

test('erofs cat: the bytes the kernel reads', async () => {
  let n = 0;
  for (const [k, e] of kernel) {
    if (e.type !== 'file' || k.includes('\\') || e.size < 4096 || n >= 5) continue;
    n++;
    const r = await atomfs(['erofs', 'cat', image, k]);
    assert.equal(r.status, 0, r.stderr.toString());
    assert.equal(createHash('sha256').update(r.stdout).digest('hex'), e.sha256, k);
  }
  assert.equal(n, 5);
  const bad = await atomfs(['erofs', 'cat', image, '/no/such']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr.toString(), /^Error: \/no\/such: ENOENT/);
});

test('erofs extract equals the kernel mount (with xattrs) and fsck.erofs --extract', async (t) => {
  const stack = useCleanup(t);
  const dir = makeTempDir('erofs-x', stack);
  const out = join(dir, 'ours');
  const r = await atomfs(['erofs', 'extract', image, out]);
  assert.equal(r.status, 0, r.stderr.toString());
  const ours = await snapshotDir(out);
  assert.deepEqual(compareSnapshots(kernel, ours, { ignore: ['dirNlink'] }), []);
  const theirs = join(dir, 'fsck');
  await run(['fsck.erofs', `--extract=${theirs}`, image]);
  const fsck = await snapshotDir(theirs);
  // fsck.erofs 1.5 writes no xattrs, copies hard links apart and chowns after chmod (clearing
  // setuid/setgid): those are compared with the kernel above.
  const ignorePaths = (k: string): boolean => k === '/' || k.startsWith('/perms/set');
  assert.deepEqual(compareSnapshots(fsck, ours, { ignore: ['xattrs', 'dirNlink', 'nlink', 'linkGroup'], ignorePaths }), []);
});

test('erofs mount serves the image as the kernel does; erofs umount removes it', async (t) => {
  const stack = useCleanup(t);
  const dir = makeTempDir('erofs-m', stack);
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  stack.add(`umount ${mp}`, () => {
    if (isMounted(mp)) runSync(['umount', '-l', mp], { allowFail: true });
  });
  const m = await atomfs(['erofs', 'mount', image, mp]);
  assert.equal(m.status, 0, m.stderr.toString());
  assert.equal(readMountinfo().find((x) => x.mountpoint === mp)?.fstype, 'fuse.atomfs');
  assert.deepEqual(compareSnapshots(kernel, await snapshotDir(mp), { ignore: ['dirNlink'] }), []);
  assert.deepEqual(compareSnapshots(kernel, await snapshotDir(mp)), [], 'directory link counts too');
  // What snapshots leave out: st_ino, st_blksize, st_blocks, nanoseconds, statfs.
  await withLoopMount(
    image,
    (kmp) => {
      for (const k of [...kernel.keys()].filter((x) => !x.includes('\\'))) {
        const a = lstatSync(keyToPath(kmp, k), { bigint: true });
        const b = lstatSync(keyToPath(mp, k), { bigint: true });
        for (const f of ['ino', 'blksize', 'blocks', 'mtimeNs', 'atimeNs', 'ctimeNs', 'nlink'] as const) assert.equal(b[f], a[f], `${k} ${f}`);
      }
      const sk = statfsSync(kmp);
      const so = statfsSync(mp);
      // (The kernel's erofs reports f_files as 2^64-1; ours gives the image's inode count.)
      assert.deepEqual([so.bsize, so.blocks], [sk.bsize, sk.blocks], 'statfs');
    },
    { fsType: 'erofs' },
  );
  const some = [...kernel.values()].find((e) => e.type === 'file' && e.size > 100_000)!;
  assert.equal(createHash('sha256').update(readFileSync(keyToPath(mp, some.path))).digest('hex'), some.sha256);
  const sub = await atomfs(['erofs', 'mount', '--subdir', '/nosuch', image, mp]);
  assert.equal(sub.status, 1);
  const u = await atomfs(['erofs', 'umount', mp]);
  assert.equal(u.status, 0, u.stderr.toString());
  assert.ok(!isMounted(mp));
});

test('bad input: one line, exit 1', async (t) => {
  const stack = useCleanup(t);
  const dir = makeTempDir('erofs-bad', stack);
  const notErofs = join(dir, 'x.img');
  writeFileSync(notErofs, Buffer.alloc(8192, 7));
  for (const args of [['erofs', 'ls', notErofs], ['erofs', 'info', notErofs], ['erofs', 'mount', notErofs, dir]]) {
    const r = await atomfs(args);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr.toString(), /^Error: .*no erofs magic[^\n]*\n$/);
  }
  const trunc = join(dir, 'trunc.erofs');
  writeFileSync(trunc, readFileSync(image).subarray(0, 16384));
  const r = await atomfs(['erofs', 'ls', trunc]);
  assert.equal(r.status, 1);
  assert.match(r.stderr.toString(), /^Error: [^\n]*(past the end|outside the image)[^\n]*\n$/);
  const u = await atomfs(['erofs']);
  assert.equal(u.status, 2);
});
