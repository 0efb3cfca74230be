/**
 * Our overlay over real directories against the kernel's overlayfs over the same (or the
 * equivalent kernel-dialect) directories: every entry's type, mode, owner, size, mtime, rdev,
 * nlink, symlink target, xattrs, content, listing and hard-link grouping must agree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync } from 'node:fs';
import { Overlay } from '../src/index.js';
import { DirLayer } from './dir-layer.js';
import { buildLayer, type Dialect } from './layer-builder.js';
import { checkLookups, layerNames, diffSnapshots, snapshotKernel, snapshotOverlay, type Snapshot } from './compare.js';
import { Scratch } from './mounts.js';
import { LAYERS } from './scenario.js';

/** Build the scenario's layers under `dir` in one dialect; returns their paths, top first. */
function buildSet(s: Scratch, name: string, dialect: Dialect): string[] {
  return LAYERS.map((ops, i) => {
    const dir = s.path(`${name}/L${i}`);
    buildLayer(dir, ops, dialect);
    return dir;
  });
}

/** Our view, from listings, and again from lookups alone (a second overlay without listing cache). */
function ours(dirs: string[]): { snap: Snapshot; issues: string[]; ov: Overlay; ids: Map<string, bigint> } {
  const ov = new Overlay(dirs.map((d) => new DirLayer(d)));
  const got = snapshotOverlay(ov);
  const lookupOnly = new Overlay(dirs.map((d) => new DirLayer(d)), { listingCacheBytes: 0 });
  got.issues.push(...checkLookups(lookupOnly, got.snap, got.ids, layerNames(dirs)));
  return { ...got, ov };
}

function kernel(s: Scratch, name: string, dirs: string[], extra: string): Snapshot {
  const mp = s.mountOverlay(`mnt-${name}`, `ro,lowerdir=${dirs.join(':')}${extra}`);
  return snapshotKernel(mp);
}

/** Facts the scenario must show, so a comparison that passes also proves the rules were hit. */
function assertScenarioShape(k: Snapshot): void {
  const has = (p: string): boolean => k.has(p);
  assert.ok(!has('d/gone') && !has('null') && !has('pipe') && !has('big_tree') && !has('xw/xa'), 'whiteouts hide');
  assert.ok(!has('opq_t/old1') && !has('opq_u/old') && !has('opq_wh/old') && !has('opq_sib/old'), 'opaque dirs hide');
  assert.ok(has('opq_t/new3') && !has('opq_t/new1') && has('opq_u/new') && has('opq_sib/new'));
  assert.equal(k.get('replaced_dir')?.type, 'file');
  assert.equal(k.get('file_to_dir')?.type, 'dir');
  assert.equal(k.get('d/x')?.type, 'dir');
  assert.equal(k.get('merge3')?.nlink, 1, 'merged directory reports nlink 1');
  assert.equal(k.get('d/x')?.nlink, 2, 'single-layer directory keeps its own nlink');
  assert.deepEqual(k.get('merge3')?.children, ['m2', 'm3', 'shared']);
  assert.deepEqual(k.get('rec')?.children, ['b']);
  assert.deepEqual(k.get('wh_merge')?.children, ['mid']);
  assert.deepEqual(k.get('sandwich')?.children, ['top_only']);
  assert.deepEqual(k.get('sandwich2')?.children, ['top_only']);
  assert.equal(k.get('sandwich')?.nlink, 3, 'not merged: own nlink (2 + one subdirectory)');
  assert.equal(k.get('mode_change')?.mode, (0o040700).toString(8));
  assert.equal(k.get('link1')?.target, 'keep.txt');
  assert.ok(has('f\xffn') && has('d/sub/deep/deeper/f2') && has('xw/xc'));
  assert.deepEqual(k.get('keep.txt')?.xattrs, { 'user.empty': '', 'user.k': '76' });
  assert.deepEqual(k.get('mode_change')?.xattrs, { 'user.dir': Buffer.from('middle').toString('hex') });
  assert.equal(k.get('d/sub/deep/deeper/f')?.gid, 42);
  assert.equal(k.get('loopish')?.rdev, (7 << 8) | (300 & 0xff) | ((300 & ~0xff) << 12));
  assert.equal(k.get('d/hl2')?.nlink, 3, 'lower hard links keep their nlink');
  assert.notEqual(k.get('hl1')?.ino, k.get('d/hl2')?.ino);
  assert.equal(k.get('d/hl2')?.ino, k.get('d/sub/hl3')?.ino);
}

function assertSame(expected: Snapshot, got: { snap: Snapshot; issues: string[] }): void {
  assert.deepEqual(got.issues, [], 'our overlay is self-consistent');
  assert.deepEqual(diffSnapshots(expected, got.snap), [], 'our view equals the kernel view');
}

test('trusted.overlay.* layers: ours equals kernel overlayfs (default xattr mode)', (t) => {
  const s = new Scratch(t);
  const dirs = buildSet(s, 'trusted', { xattrPrefix: 'trusted' });
  const k = kernel(s, 'trusted', dirs, '');
  assertScenarioShape(k);
  assertSame(k, ours(dirs));
});

test('user.overlay.* layers: ours equals kernel overlayfs mounted with userxattr', (t) => {
  const s = new Scratch(t);
  const dirs = buildSet(s, 'user', { xattrPrefix: 'user' });
  const k = kernel(s, 'user', dirs, ',userxattr');
  assertScenarioShape(k);
  assertSame(k, ours(dirs));
});

test('AUFS .wh. files, .wh..wh..opq and mixed xattr prefixes: ours equals the kernel on the kernel-dialect twin', (t) => {
  const s = new Scratch(t);
  const kernelDirs = buildSet(s, 'twin', { xattrPrefix: 'trusted' });
  const mixedDirs = buildSet(s, 'mixed', {});
  // The mixed set really uses the other dialects (otherwise this test would repeat the first).
  assert.ok(lstatSync(`${mixedDirs[0]}/d/.wh.gone`).isFile());
  assert.ok(lstatSync(`${mixedDirs[1]}/opq_wh/.wh..wh..opq`).isFile());
  assert.ok(lstatSync(`${mixedDirs[1]}/.wh.opq_sib`).isFile());
  const k = kernel(s, 'twin', kernelDirs, '');
  assertScenarioShape(k);
  assertSame(k, ours(mixedDirs));
});

test('the comparison notices a wrong view (layer order swapped)', (t) => {
  const s = new Scratch(t);
  const dirs = buildSet(s, 'neg', { xattrPrefix: 'trusted' });
  const k = kernel(s, 'neg', dirs, '');
  const swapped = ours([dirs[1]!, dirs[0]!, dirs[2]!]);
  const diffs = diffSnapshots(k, swapped.snap);
  assert.ok(diffs.includes('/d/x: missing in ours (kernel has dir)'), diffs.join('\n'));
  assert.ok(diffs.some((d) => d.startsWith('/opq_t: children')), diffs.join('\n'));
  assert.ok(diffs.some((d) => d.startsWith('/d: xattrs')), diffs.join('\n'));
});

test('file ids resolve in a fresh Overlay instance (as on another thread)', (t) => {
  const s = new Scratch(t);
  const dirs = buildSet(s, 'fresh', { xattrPrefix: 'trusted' });
  const first = ours(dirs);
  const fresh = new Overlay(dirs.map((d) => new DirLayer(d)));
  assert.equal(fresh.rootId, first.ov.rootId);
  let files = 0;
  for (const [path, id] of first.ids) {
    const info = first.snap.get(path)!;
    if (info.type === 'dir') continue;
    const a = fresh.getattr(id);
    assert.equal(a.mode.toString(8), info.mode, path);
    assert.equal(a.ino, id);
    if (info.type === 'file') {
      assert.equal(fresh.read(id, 0, a.size).length, a.size);
      files++;
    }
    if (info.type === 'symlink') assert.equal(fresh.readlink(id).toString('latin1'), info.target);
  }
  assert.ok(files > 20);
  // Directory ids need the stack recorded where they were handed out; a fresh instance says ESTALE
  // until it walks there itself, and then gives the same id.
  const dId = first.ids.get('d/sub')!;
  assert.throws(() => fresh.readdir(dId), { code: 'ESTALE', errno: 116 });
  assert.equal(fresh.resolve('d/sub'), dId);
  assert.deepEqual(fresh.readdir(dId).map((e) => e.id), first.ov.readdir(dId).map((e) => e.id));
});
