/** Unit tests of what the registry package decides on its own: references, challenges, the chunk map, the cache bound. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseChallenge } from '../src/auth.js';
import { CachedBlob, CHUNK_BYTES, openCacheDir, trimCache } from '../src/cache.js';
import { isLoopbackRegistry, worstCaseMs } from '../src/client.js';
import { RemoteRefError } from '../src/errors.js';
import { formatRemoteRef, parseRemoteRef } from '../src/reference.js';

const HEX = 'ab'.repeat(32);

test('docker:// references: host, port, nested repository, tag, digest; bad ones are refused by name', () => {
  assert.deepEqual(parseRemoteRef('docker://127.0.0.1:5000/a/b-c/d:v1.2'), { registry: '127.0.0.1:5000', repository: 'a/b-c/d', tag: 'v1.2', reference: 'v1.2' });
  assert.deepEqual(parseRemoteRef(`docker://Reg.Example.org/x@sha256:${HEX}`), { registry: 'reg.example.org', repository: 'x', digest: `sha256:${HEX}`, reference: `sha256:${HEX}` });
  const both = parseRemoteRef(`docker://[::1]:5000/x:t@sha256:${HEX}`);
  assert.equal(both.reference, `sha256:${HEX}`);
  assert.equal(formatRemoteRef(both), `docker://[::1]:5000/x:t@sha256:${HEX}`);
  for (const bad of ['docker://', 'docker://host', 'docker://host/', 'docker://host/Upper:t', 'docker://host/x', 'docker://host/x:', 'docker://host/x@sha256:12', 'docker://ho st/x:t', 'oci:x:y']) {
    assert.throws(() => parseRemoteRef(bad), RemoteRefError, bad);
  }
});

test('plain HTTP only to loopback; the worst case of a retry policy', () => {
  for (const r of ['127.0.0.1:5000', 'localhost', '[::1]:80', '127.9.9.9']) assert.equal(isLoopbackRegistry(r), true, r);
  for (const r of ['10.0.0.1:5000', 'registry.example.org', '128.0.0.1', 'localhost.evil.org']) assert.equal(isLoopbackRegistry(r), false, r);
  assert.equal(worstCaseMs({ attempts: 3, timeoutMs: 1000, backoffMs: 100 }), 3000 + 100 + 200);
});

test('WWW-Authenticate challenges', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' },
  });
  assert.deepEqual(parseChallenge('Basic realm="x\\"y"'), { scheme: 'basic', params: { realm: 'x"y' } });
});

test('the chunk map: runs of missing chunks, stores seen by a second opener, a replaced map is not believed', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'atomfs-regunit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  openCacheDir(dir);
  assert.equal(statSync(join(dir, 'blobs', 'sha256')).mode & 0o777, 0o700);
  const size = 3 * CHUNK_BYTES + 10;
  const a = new CachedBlob(dir, HEX, size);
  const b = new CachedBlob(dir, HEX, size);
  t.after(() => (a.close(), b.close()));
  assert.deepEqual(a.missing(0, size), [{ first: 0, count: 4 }]);
  const last = Buffer.alloc(10, 7);
  a.store({ first: 3, count: 1 }, last);
  a.store({ first: 1, count: 1 }, Buffer.alloc(CHUNK_BYTES, 1));
  assert.deepEqual(b.missing(0, size), [{ first: 0, count: 1 }, { first: 2, count: 1 }]);
  assert.deepEqual(b.missing(CHUNK_BYTES, CHUNK_BYTES), []);
  const got = Buffer.alloc(10);
  b.readInto(3 * CHUNK_BYTES, 10, got);
  assert.deepEqual(got, last);
  assert.throws(() => a.store({ first: 0, count: 1 }, Buffer.alloc(5)), /5 bytes for a run of/);
  a.clear();
  assert.deepEqual(b.missing(0, size), [{ first: 0, count: 4 }]);
  // A data file of the wrong size (left by something else): the map is reset.
  writeFileSync(join(dir, 'blobs', 'sha256', 'cd'.repeat(32)), 'short');
  writeFileSync(join(dir, 'blobs', 'sha256', `${'cd'.repeat(32)}.chunks`), Buffer.from([1]));
  const c = new CachedBlob(dir, 'cd'.repeat(32), CHUNK_BYTES);
  t.after(() => c.close());
  assert.deepEqual(c.missing(0, CHUNK_BYTES), [{ first: 0, count: 1 }]);
  assert.equal(readFileSync(join(dir, 'blobs', 'sha256', `${'cd'.repeat(32)}.chunks`))[0], 0);
});

test('trimCache drops the blobs used longest ago, never the kept ones', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'atomfs-regunit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  openCacheDir(dir);
  const hexes = ['01', '02', '03'].map((h) => h.repeat(32));
  hexes.forEach((h, i) => {
    const blob = new CachedBlob(dir, h, CHUNK_BYTES);
    blob.store({ first: 0, count: 1 }, Buffer.alloc(CHUNK_BYTES, 1));
    blob.close();
    const when = new Date(Date.now() - (10 - i) * 1000);
    utimesSync(join(dir, 'blobs', 'sha256', `${h}.chunks`), when, when);
  });
  // Oldest is hexes[0], but it is kept: hexes[1] goes.
  const r = trimCache(dir, 2 * CHUNK_BYTES + 4096 * 4, new Set([hexes[0]!]));
  assert.deepEqual(r.removed, [hexes[1]]);
});
