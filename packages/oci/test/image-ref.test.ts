import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ImageRefSyntaxError, isValidRefName, parseImageRef } from '../src/index.js';

test('OCIDIR:TAG splits at the first colon (tags keep their colons)', () => {
  assert.deepEqual(parseImageRef('containers/oci:minbase:latest'), { dir: 'containers/oci', tag: 'minbase:latest' });
  assert.deepEqual(parseImageRef('zothub:busybox-squashfs'), { dir: 'zothub', tag: 'busybox-squashfs' });
  assert.deepEqual(parseImageRef('/abs/dir:t'), { dir: '/abs/dir', tag: 't' });
});

test('no colon, empty dir or empty tag are usage errors', () => {
  for (const bad of ['justadir', ':tag', 'dir:']) {
    assert.throws(() => parseImageRef(bad), (e: unknown) => e instanceof ImageRefSyntaxError && /expected OCIDIR:TAG/.test(e.message), bad);
  }
});

test('oci: transport prefix only when ./oci does not exist and a colon remains', () => {
  const none = { exists: () => false };
  const some = { exists: (p: string) => p === 'oci' };
  assert.deepEqual(parseImageRef('oci:/tmp/x:busybox', none), { dir: '/tmp/x', tag: 'busybox' });
  assert.deepEqual(parseImageRef('oci:/tmp/x:a:b', none), { dir: '/tmp/x', tag: 'a:b' });
  // Go's reading is kept whenever it could succeed: ./oci exists, or no second colon.
  assert.deepEqual(parseImageRef('oci:/tmp/x:busybox', some), { dir: 'oci', tag: '/tmp/x:busybox' });
  assert.deepEqual(parseImageRef('oci:test-squashfs', none), { dir: 'oci', tag: 'test-squashfs' });
  assert.deepEqual(parseImageRef('oci:test-squashfs', some), { dir: 'oci', tag: 'test-squashfs' });
  // Only one prefix is stripped.
  assert.deepEqual(parseImageRef('oci:oci:x', none), { dir: 'oci', tag: 'x' });
});

test('OCI ref-name grammar', () => {
  for (const ok of ['a', 'test-squashfs', 'minbase:latest', 'a.b_c+d@e', 'a--b', 'x/y/z', 'A9', 'v1.2.3']) assert.ok(isValidRefName(ok), ok);
  for (const bad of ['', '-a', 'a-', 'a b', 'a//b', '/a', 'a/', 'a---b', 'a..b', 'ä', 'a\n']) assert.ok(!isValidRefName(bad), JSON.stringify(bad));
  // Linear-time: a long near-miss does not backtrack catastrophically.
  const t0 = process.hrtime.bigint();
  assert.ok(!isValidRefName('a-'.repeat(50000) + '!'));
  assert.ok(Number(process.hrtime.bigint() - t0) / 1e6 < 500);
});
