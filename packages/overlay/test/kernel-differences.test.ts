/**
 * Where we deliberately differ from kernel overlayfs, checked on the running kernel so the
 * documentation stays true: the kernel lists some whiteouts that its own lookup then refuses
 * (readdir shows a name, stat says ENOENT); we hide them in both. And we honour both xattr
 * prefixes at once, where the kernel honours one per mount.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readdirSync } from 'node:fs';
import { Overlay } from '../src/index.js';
import { DirLayer } from './dir-layer.js';
import { buildLayer } from './layer-builder.js';
import { Scratch } from './mounts.js';

function kernelSees(mp: string, dir: string, name: string): { listed: boolean; stat: boolean } {
  const listed = readdirSync(`${mp}/${dir}`).includes(name);
  let stat = true;
  try {
    lstatSync(`${mp}/${dir}/${name}`);
  } catch (e) {
    assert.equal((e as NodeJS.ErrnoException).code, 'ENOENT');
    stat = false;
  }
  return { listed, stat };
}

test('whiteouts the kernel lists but cannot stat are hidden by us; other-prefix opaque honoured', (t) => {
  const s = new Scratch(t);
  const top = s.path('top');
  const bottom = s.path('bottom');
  buildLayer(top, [
    { file: 'merged/x' },
    // Empty file with the xwhiteout xattr in a directory NOT marked overlay.opaque=x.
    { file: 'merged/xw', data: '', xattrs: { 'trusted.overlay.whiteout': 'y' } },
    { dir: 'uopq', xattrs: { 'user.overlay.opaque': 'y' } },
    { file: 'uopq/top' },
  ]);
  buildLayer(bottom, [
    // A whiteout in a directory only the bottom layer has: nothing to hide, but still a whiteout.
    { whiteout: 'lonely/w', style: 'chr' },
    { file: 'lonely/real' },
    { file: 'merged/xw', data: 'hidden by the xwhiteout above' },
    { file: 'uopq/bottom' },
  ]);
  const mp = s.mountOverlay('mnt', `ro,lowerdir=${top}:${bottom}`);
  const ov = new Overlay([new DirLayer(top), new DirLayer(bottom)]);
  const ours = (dir: string, name: string) => ({
    listed: ov.readdir(ov.resolve(dir)).some((e) => e.name.toString() === name),
    stat: ov.lookup(ov.resolve(dir), Buffer.from(name)) !== undefined,
  });

  assert.deepEqual(kernelSees(mp, 'lonely', 'w'), { listed: true, stat: false });
  assert.deepEqual(ours('lonely', 'w'), { listed: false, stat: false });
  assert.deepEqual(kernelSees(mp, 'lonely', 'real'), ours('lonely', 'real'));

  assert.deepEqual(kernelSees(mp, 'merged', 'xw'), { listed: true, stat: false });
  assert.deepEqual(ours('merged', 'xw'), { listed: false, stat: false });

  // Default (trusted) mount: user.overlay.opaque is an ordinary xattr to the kernel.
  assert.deepEqual(readdirSync(`${mp}/uopq`).sort(), ['bottom', 'top']);
  assert.deepEqual(ov.readdir(ov.resolve('uopq')).map((e) => e.name.toString()), ['top']);
  assert.deepEqual(ov.listxattr(ov.resolve('uopq')), []);
});
