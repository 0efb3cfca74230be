/**
 * Layers made the way stacker makes them: mount a writable kernel overlayfs over the layers so
 * far, change files through it, unmount, and use the upper directory as the next layer. Its
 * whiteouts, opaque markers and copied-up files are the kernel's own. Then our view of the
 * stack must equal the kernel's read-only mount of the same stack.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync } from 'node:fs';
import { Overlay } from '../src/index.js';
import { DirLayer } from './dir-layer.js';
import { buildLayer } from './layer-builder.js';
import { checkLookups, diffSnapshots, layerNames, snapshotKernel, snapshotOverlay } from './compare.js';
import { Scratch } from './mounts.js';
import { BOTTOM } from './scenario.js';
import { dumpXattrs } from './xattr-dump.js';

const ROUND1 = `
rm a.txt
rm -rf d && mkdir d && echo fresh > d/new
echo appended >> keep.txt
chmod 0600 keep.txt
chown 1234:4321 hl_top
chmod 0700 mode_change
mkdir -p newdir/sub && echo n > newdir/sub/f
ln -s ../a.txt newdir/link
echo h > newdir/h1 && ln newdir/h1 newdir/h2
setfattr -n user.added -v yes merge3/m1
rm -rf replaced_dir && echo file > replaced_dir
rm file_to_dir && mkdir file_to_dir && echo c > file_to_dir/c
mv opq_t opq_t_moved
echo m > merge3/new_in_u1
touch -d @1650000000 merge3
rm xw/xa
mknod newdev c 1 5
mkfifo newfifo
ln hl1 hl1_link_up
`;

const ROUND2 = `
rm keep.txt
rm -rf merge3 && mkdir merge3 && echo again > merge3/again
rm newdir/h1
echo x >> newdir/h2
rm -rf big_tree/a
echo more >> big.bin
chown -h 99:99 link1
mv d/new d/renamed
rmdir empty
mkdir empty2
setfattr -n user.late -v 1 newdir
`;

function sh(cwd: string, script: string): void {
  execFileSync('sh', ['-ec', script], { cwd, stdio: 'pipe' });
}

for (const mode of ['userxattr', 'trusted'] as const) {
  test(`stacker-style upper layers (${mode}): ours equals kernel overlayfs`, (t) => {
    const s = new Scratch(t);
    const opt = mode === 'userxattr' ? ',userxattr' : ',redirect_dir=off';
    const prefix = mode === 'userxattr' ? 'user' : 'trusted';
    const l1 = s.path('L1');
    buildLayer(l1, BOTTOM, { xattrPrefix: prefix });
    const lowers = [l1];
    for (const [i, script] of [ROUND1, ROUND2].entries()) {
      const upper = s.path(`U${i + 1}`);
      const work = s.path(`W${i + 1}`);
      mkdirSync(upper);
      mkdirSync(work);
      const mp = s.mountOverlay(`rw${i + 1}`, `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work},index=off${opt}`);
      sh(mp, script);
      s.unmount(mp);
      lowers.unshift(upper);
    }
    const [u2, u1] = lowers as [string, string, string];
    // The layers hold the kernel's own markers.
    const wh = lstatSync(`${u1}/a.txt`);
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'kernel whiteout is a char device 0:0');
    assert.equal(dumpXattrs(`${u1}/d`).get(`${u1}/d`)?.get(`${prefix}.overlay.opaque`)?.toString(), 'y');
    assert.equal(dumpXattrs(`${u2}/merge3`).get(`${u2}/merge3`)?.get(`${prefix}.overlay.opaque`)?.toString(), 'y');

    const mp = s.mountOverlay('ro', `ro,lowerdir=${lowers.join(':')}${mode === 'userxattr' ? ',userxattr' : ''}`);
    const k = snapshotKernel(mp);
    assert.ok(!k.has('a.txt') && !k.has('keep.txt') && !k.has('opq_t') && k.has('opq_t_moved/old2'));
    assert.deepEqual(k.get('d')?.children, ['renamed']);
    assert.deepEqual(k.get('merge3')?.children, ['again']);
    assert.equal(k.get('newdir/h2')?.nlink, 1);
    assert.equal(k.get('hl1_link_up')?.ino, k.get('hl1')?.ino);

    const ov = new Overlay(lowers.map((d) => new DirLayer(d)));
    const got = snapshotOverlay(ov);
    const lookupOnly = new Overlay(lowers.map((d) => new DirLayer(d)), { listingCacheBytes: 0 });
    got.issues.push(...checkLookups(lookupOnly, got.snap, got.ids, layerNames(lowers)));
    assert.deepEqual(got.issues, []);
    assert.deepEqual(diffSnapshots(k, got.snap), []);
  });
}
