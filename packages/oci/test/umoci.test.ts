/**
 * Cross-checks against umoci (Debian package `umoci`, the OCI library Go atomfs uses): umoci must
 * accept the layouts our writer produces, we must read layouts umoci produces, and both must
 * reject the same corrupted manifest.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DigestMismatchError, EmptyImageError, UnsupportedLayerError, listTags, openLayout, resolveImage, writeLayout } from '../src/index.js';
import { blobFile, randomFile, readJson, sha256sum, tempDir, umoci } from './helpers.js';

function lsTags(dir: string): string[] {
  const r = umoci(['ls', '--layout', dir]);
  assert.equal(r.status, 0, `umoci ls failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '').sort();
}

function statOk(dir: string, tag: string): void {
  const r = umoci(['stat', '--image', `${dir}:${tag}`, '--json']);
  assert.equal(r.status, 0, `umoci stat ${dir}:${tag} failed: ${r.stderr}`);
  JSON.parse(r.stdout);
}

test('umoci accepts layouts written by writeLayout (tags, nested index, shared blobs)', async (t) => {
  const work = tempDir(t);
  const base = randomFile(work, 'base', 20000);
  const top = randomFile(work, 'top', 3000);
  const dir = join(work, 'oci');
  await writeLayout(dir, { tag: 'minbase:latest', layers: [{ file: base, rootHash: 'ab'.repeat(32) }] });
  await writeLayout(dir, { tag: 'app-squashfs', layers: [{ file: base }, { file: top }] });
  await writeLayout(dir, { tag: 'nested', nest: 2, layers: [{ file: top }] });
  assert.deepEqual(lsTags(dir), ['app-squashfs', 'minbase:latest', 'nested']);
  assert.deepEqual((await listTags(dir)).sort(), lsTags(dir));
  for (const tag of ['minbase:latest', 'app-squashfs', 'nested']) statOk(dir, tag);
});

test('a flipped byte in the manifest is rejected by umoci and by us', async (t) => {
  const work = tempDir(t);
  const dir = join(work, 'oci');
  const w = await writeLayout(dir, { tag: 't', layers: [{ file: randomFile(work, 'l', 1000) }] });
  statOk(dir, 't');
  const fd = openSync(w.manifestPath, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, 20);
  b[0] = (b[0] as number) ^ 0x01;
  writeSync(fd, b, 0, 1, 20);
  closeSync(fd);
  const r = umoci(['stat', '--image', `${dir}:t`]);
  assert.notEqual(r.status, 0, 'umoci must reject the corrupted manifest');
  await assert.rejects(resolveImage(dir, 't'), DigestMismatchError);
});

test('we read umoci-made layouts; writeLayout adds tags to them without disturbing umoci entries', async (t) => {
  const work = tempDir(t);
  const dir = join(work, 'u');
  const run = (args: string[]): void => {
    const r = umoci(args);
    assert.equal(r.status, 0, `umoci ${args.join(' ')}: ${r.stderr}`);
  };
  run(['init', '--layout', dir]);
  await openLayout(dir);
  run(['new', '--image', `${dir}:base`]);
  // umoci's `new` makes a manifest without layers.
  await assert.rejects(resolveImage(dir, 'base'), EmptyImageError);

  const root = join(work, 'rootfs');
  mkdirSync(root);
  writeFileSync(join(root, 'f'), 'hello');
  const tar = join(work, 'layer.tar');
  execFileSync('tar', ['-C', root, '-cf', tar, '.']);
  run(['raw', 'add-layer', '--image', `${dir}:base`, tar]);
  await assert.rejects(resolveImage(dir, 'base'), (e: unknown) => {
    assert.ok(e instanceof UnsupportedLayerError);
    assert.equal(e.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    assert.match(e.message, /^unknown media-type application\/vnd\.oci\.image\.layer\.v1\.tar\+gzip/);
    // The layer digest we report is the sha256sum of umoci's gzip blob.
    assert.equal(e.digest, `sha256:${sha256sum(blobFile(dir, e.digest))}`);
    return true;
  });

  const sq = randomFile(work, 'sq', 5000);
  await writeLayout(dir, { tag: 'sq', layers: [{ file: sq, rootHash: 'cd'.repeat(32) }] });
  assert.deepEqual(lsTags(dir), ['base', 'sq']);
  statOk(dir, 'base');
  statOk(dir, 'sq');

  // A tag made by umoci for our manifest resolves to the same thing.
  run(['tag', '--image', `${dir}:sq`, 'sq:v2']);
  const a = await resolveImage(dir, 'sq');
  const b = await resolveImage(dir, 'sq:v2');
  assert.equal(b.manifestDigest, a.manifestDigest);
  assert.deepEqual(b.layers, a.layers);
  assert.equal(a.layers[0]?.hex, sha256sum(sq));
  assert.equal(a.layers[0]?.rootHash, 'cd'.repeat(32));
  const idx = readJson(join(dir, 'index.json'));
  assert.equal(idx.manifests.length, 3);
});

test('umoci and we both refuse an invalid tag', async (t) => {
  const work = tempDir(t);
  const dir = join(work, 'oci');
  await writeLayout(dir, { tag: 't', layers: [{ file: randomFile(work, 'l', 10) }] });
  const r = umoci(['stat', '--image', `${dir}:bad tag!`]);
  assert.notEqual(r.status, 0);
  await assert.rejects(resolveImage(dir, 'bad tag!'), /refusing to resolve invalid reference "bad tag!"/);
});
