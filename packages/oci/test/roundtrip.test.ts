import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, readdirSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  ANNOTATION_VERITY_ROOT_HASH,
  ANNOTATION_VERITY_ROOT_HASH_LEGACY,
  DigestMismatchError,
  MEDIA_TYPE_SQUASHFS_ZSTD_VERITY_LEGACY,
  SizeMismatchError,
  listTags,
  openLayout,
  resolveImage,
  verifyLayerDigest,
  writeLayout,
} from '../src/index.js';
import { HASH_A, HASH_B, TAG, blobFile, editIndex, goodImage, putJsonBlob, randomFile, readJson, sha256sum, tempDir } from './helpers.js';

test('layers come back top-first with digests that sha256sum agrees with', async (t) => {
  const img = await goodImage(t);
  const r = await resolveImage(img.dir, TAG);
  const [bottom, top] = img.files as [string, string];
  assert.equal(r.layers.length, 2);
  assert.equal(r.layers[0]?.digest, `sha256:${sha256sum(top)}`);
  assert.equal(r.layers[1]?.digest, `sha256:${sha256sum(bottom)}`);
  assert.equal(r.layers[0]?.rootHash, HASH_B);
  assert.equal(r.layers[1]?.rootHash, HASH_A);
  for (const [i, file] of [top, bottom].entries()) {
    const l = r.layers[i];
    assert.ok(l);
    assert.equal(l.path, join(img.dir, 'blobs', 'sha256', sha256sum(file)));
    assert.equal(sha256sum(l.path), l.hex, 'blob content is the layer file');
    assert.equal(l.size, statSync(file).size);
    assert.equal(l.fsType, 'squashfs');
    assert.equal(l.mediaType, 'application/vnd.stacker.image.layer.squashfs+zstd');
    assert.equal(l.rootHashAnnotation, ANNOTATION_VERITY_ROOT_HASH);
  }
  // The manifest digest is the sha256 of the manifest blob file, computed independently.
  assert.equal(r.manifestDigest, `sha256:${sha256sum(blobFile(img.dir, r.manifestDigest))}`);
  assert.equal(r.layoutDir, img.dir);
  // Manifest lists layers bottom-first on disk.
  const m = readJson(blobFile(img.dir, r.manifestDigest));
  assert.deepEqual(
    m.layers.map((l: { digest: string }) => l.digest),
    [`sha256:${sha256sum(bottom)}`, `sha256:${sha256sum(top)}`],
  );
});

test('legacy media type and legacy root-hash annotation (stacker v1.0.x images)', async (t) => {
  const work = tempDir(t);
  const f1 = randomFile(work, 'a', 5000);
  const f2 = randomFile(work, 'b', 6000);
  const dir = join(work, 'oci');
  await writeLayout(dir, {
    tag: 'test-squashfs',
    layers: [
      { file: f1, mediaType: MEDIA_TYPE_SQUASHFS_ZSTD_VERITY_LEGACY, rootHash: HASH_A, annotationName: ANNOTATION_VERITY_ROOT_HASH_LEGACY },
      { file: f2, mediaType: 'application/vnd.stacker.image.layer.squashfs', rootHash: HASH_B.toUpperCase() },
    ],
  });
  const r = await resolveImage(dir, 'test-squashfs');
  assert.equal(r.layers[1]?.mediaType, MEDIA_TYPE_SQUASHFS_ZSTD_VERITY_LEGACY);
  assert.equal(r.layers[1]?.rootHash, HASH_A);
  assert.equal(r.layers[1]?.rootHashAnnotation, ANNOTATION_VERITY_ROOT_HASH_LEGACY);
  assert.equal(r.layers[0]?.mediaType, 'application/vnd.stacker.image.layer.squashfs');
  assert.equal(r.layers[0]?.rootHash, HASH_B, 'upper-case hex is normalised to lower case');
});

test('current annotation wins over the legacy one; no annotation means no rootHash', async (t) => {
  const work = tempDir(t);
  const f1 = randomFile(work, 'a', 100);
  const f2 = randomFile(work, 'b', 200);
  const dir = join(work, 'oci');
  await writeLayout(dir, {
    tag: 'x',
    layers: [
      { file: f1, rootHash: HASH_A, annotations: { [ANNOTATION_VERITY_ROOT_HASH_LEGACY]: HASH_B } },
      { file: f2, mediaType: 'application/vnd.stacker.image.layer.squashfs+gzip' },
    ],
  });
  const r = await resolveImage(dir, 'x');
  assert.equal(r.layers[1]?.rootHash, HASH_A);
  assert.equal(r.layers[0]?.rootHash, undefined);
  assert.ok(!('rootHash' in (r.layers[0] ?? {})));
});

test('nested indexes are followed (and digest-checked)', async (t) => {
  const work = tempDir(t);
  const f = randomFile(work, 'a', 3000);
  const dir = join(work, 'oci');
  const w = await writeLayout(dir, { tag: 'nested', nest: 3, layers: [{ file: f }] });
  assert.equal(w.indexEntry.mediaType, 'application/vnd.oci.image.index.v1+json');
  const r = await resolveImage(dir, 'nested');
  assert.equal(r.manifestDigest, w.manifestDigest);
  assert.equal(r.layers[0]?.digest, `sha256:${sha256sum(f)}`);
  assert.equal(r.manifestDescriptor.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  // Corrupt the outermost index blob: resolution must now fail on its digest.
  const outer = blobFile(dir, w.indexEntry.digest);
  const fd = openSync(outer, 'r+');
  writeSync(fd, Buffer.from(' '), 0, 1, 1); // '"' -> ' ': same size, different content
  closeSync(fd);
  await assert.rejects(resolveImage(dir, 'nested'), (e: unknown) => e instanceof DigestMismatchError && /digest mismatch/.test(e.message));
});

test('tags with colons and several tags sharing blobs in one layout', async (t) => {
  const work = tempDir(t);
  const base = randomFile(work, 'base', 10000);
  const a = randomFile(work, 'a', 1000);
  const b = randomFile(work, 'b', 2000);
  const dir = join(work, 'oci');
  await writeLayout(dir, { tag: 'minbase:latest', layers: [{ file: base }] });
  await writeLayout(dir, { tag: 'a-squashfs', layers: [{ file: base }, { file: a }] });
  await writeLayout(dir, { tag: 'b-squashfs', layers: [{ file: base }, { file: b }] });
  assert.deepEqual(await listTags(dir), ['minbase:latest', 'a-squashfs', 'b-squashfs']);

  const mb = await resolveImage(dir, 'minbase:latest');
  assert.deepEqual(mb.layers.map((l) => l.hex), [sha256sum(base)]);
  const ra = await resolveImage(dir, 'a-squashfs');
  const rb = await resolveImage(dir, 'b-squashfs');
  assert.deepEqual(ra.layers.map((l) => l.hex), [sha256sum(a), sha256sum(base)]);
  assert.deepEqual(rb.layers.map((l) => l.hex), [sha256sum(b), sha256sum(base)]);
  assert.equal(ra.layers[1]?.path, rb.layers[1]?.path, 'base blob shared');
  // 3 layer blobs + 3 manifests + configs (the config depends on the layer digests: 3 distinct).
  assert.equal(readdirSync(join(dir, 'blobs', 'sha256')).length, 3 + 3 + 3);

  // Re-tagging replaces the entry instead of creating an ambiguous duplicate.
  await writeLayout(dir, { tag: 'a-squashfs', layers: [{ file: b }] });
  assert.deepEqual(await listTags(dir), ['minbase:latest', 'b-squashfs', 'a-squashfs']);
  assert.deepEqual((await resolveImage(dir, 'a-squashfs')).layers.map((l) => l.hex), [sha256sum(b)]);
});

test('openLayout returns the absolute directory', async (t) => {
  const img = await goodImage(t);
  const prev = process.cwd();
  process.chdir(join(img.dir, '..'));
  try {
    assert.equal((await openLayout('oci')).dir, img.dir);
    assert.equal((await resolveImage('oci', TAG)).layers[0]?.path.startsWith(img.dir + '/'), true);
  } finally {
    process.chdir(prev);
  }
});

test('verifyLayerDigest: passes on an intact blob, fails after one flipped byte or truncation', async (t) => {
  const img = await goodImage(t);
  const r = await resolveImage(img.dir, TAG);
  for (const l of r.layers) await verifyLayerDigest(l);
  const victim = r.layers[0];
  assert.ok(victim);
  const fd = openSync(victim.path, 'r+');
  const one = Buffer.alloc(1);
  readSync(fd, one, 0, 1, 100);
  one[0] = (one[0] as number) ^ 0x01;
  writeSync(fd, one, 0, 1, 100);
  closeSync(fd);
  await assert.rejects(verifyLayerDigest(victim), (e: unknown) => {
    assert.ok(e instanceof DigestMismatchError);
    assert.equal(e.expected, victim.digest);
    assert.equal(e.actual, `sha256:${sha256sum(victim.path)}`, 'reported actual digest matches sha256sum');
    return true;
  });
  truncateSync(victim.path, 10);
  await assert.rejects(verifyLayerDigest(victim), SizeMismatchError);
  // The size check at resolve time catches the truncated blob without hashing it.
  await assert.rejects(resolveImage(img.dir, TAG), (e: unknown) => e instanceof SizeMismatchError && /descriptor says 4113 bytes, file has 10 bytes/.test(e.message));
});

test('a descriptor blob (application/vnd.oci.descriptor.v1+json) is walked through like umoci does', async (t) => {
  const img = await goodImage(t);
  editIndex(img.dir, (idx) => {
    const e = idx.manifests[0];
    const inner = { mediaType: e.mediaType, digest: e.digest, size: e.size };
    Object.assign(e, putJsonBlob(img.dir, inner, 'application/vnd.oci.descriptor.v1+json'));
  });
  const r = await resolveImage(img.dir, TAG);
  assert.equal(r.manifestDigest, img.written.manifestDigest);
  assert.equal(readJson(join(img.dir, 'index.json')).manifests[0].mediaType, 'application/vnd.oci.descriptor.v1+json');
});

test('checkLayerBlobs: false leaves missing layer blobs to the caller', async (t) => {
  const img = await goodImage(t);
  rmSync(img.written.layers[1]?.path as string);
  const r = await resolveImage(img.dir, TAG, { checkLayerBlobs: false });
  assert.equal(r.layers[0]?.path, img.written.layers[1]?.path);
  await assert.rejects(resolveImage(img.dir, TAG), /is missing/);
});
