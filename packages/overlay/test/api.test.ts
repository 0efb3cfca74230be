/** The Overlay API on in-memory layers: errors, ids, odd layer content, caches, forget. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Overlay, LayerSetupError, OverlayError, packId, unpackId } from '../src/index.js';
import { MemLayer, dir, file, symlink, chrdev, xattrs, type MemNode } from './mem-layer.js';

const names = (ov: Overlay, id: bigint): string[] => ov.readdir(id).map((e) => e.name.toString('latin1'));
const b = (s: string): Buffer => Buffer.from(s, 'latin1');

function twoLayers(): { ov: Overlay; top: MemLayer; bottom: MemLayer; hl: MemNode } {
  const hl = file('linked', { nlink: 2 });
  const bottom = new MemLayer(
    dir({
      f: file('bottom f'),
      d: dir({ a: file('a'), ghost: chrdev(0), '.wh.phantom': file(''), '.wh..wh..opq': file(''), deep: dir({ x: file('x') }) }),
      only_low: dir({ w: chrdev(0), kept: file('k') }),
      hl1: hl,
      hl2: hl,
    }),
  );
  const top = new MemLayer(
    dir({
      f: file('top f', { xattrs: xattrs({ 'user.a': '1', 'trusted.overlay.origin': 'x', 'user.overlay.impure': 'y', 'trusted.x': '2' }) }),
      d: dir({ b: file('b') }),
      link: symlink('f'),
      dev: chrdev((1 << 8) | 3),
    }),
  );
  return { ov: new Overlay([top, bottom]), top, bottom, hl };
}

test('merged listing, lookup and attributes on memory layers', () => {
  const { ov } = twoLayers();
  assert.deepEqual(names(ov, ov.rootId), ['d', 'dev', 'f', 'hl1', 'hl2', 'link', 'only_low']);
  const d = ov.resolve('d');
  // Whiteouts and .wh.* entries of the bottom layer are hidden even though nothing lies below.
  assert.deepEqual(names(ov, d), ['a', 'b', 'deep']);
  assert.deepEqual(names(ov, ov.resolve('only_low')), ['kept']);
  assert.equal(ov.lookup(ov.resolve('only_low'), b('w')), undefined);
  assert.equal(ov.lookup(d, b('ghost')), undefined);
  assert.equal(ov.lookup(d, b('.wh.phantom')), undefined);
  assert.equal(ov.lookup(d, b('.wh..wh..opq')), undefined);
  assert.equal(ov.getattr(d).nlink, 1, 'merged dir');
  assert.equal(ov.getattr(ov.resolve('only_low')).nlink, 2, 'single-layer dir');
  assert.equal(ov.read(ov.resolve('f'), 0, 100).toString(), 'top f');
  assert.equal(ov.read(ov.resolve('f'), 2, 2).toString(), 'p ');
  assert.equal(ov.read(ov.resolve('f'), 5, 10).length, 0);
  assert.equal(ov.readlink(ov.resolve('link')).toString(), 'f');
  assert.equal(ov.getattr(ov.resolve('dev')).rdev, (1 << 8) | 3);
  assert.deepEqual(ov.listxattr(ov.resolve('f')).map(String), ['user.a', 'trusted.x']);
  assert.equal(ov.getxattr(ov.resolve('f'), b('trusted.overlay.origin')), undefined);
  assert.equal(ov.getxattr(ov.resolve('f'), b('user.a'))?.toString(), '1');
  assert.equal(ov.resolve('/d/../d/./deep//x'), ov.resolve('d/deep/x'));
  assert.equal(ov.resolve(''), ov.rootId);
  assert.equal(ov.root().id, ov.rootId);
});

test('node ids: packed (layer, key), hard links share one, root never 0 or 1', () => {
  const { ov, top, bottom, hl } = twoLayers();
  assert.equal(ov.rootId, packId(0, top.root().key));
  assert.ok(ov.rootId >= 1n << 48n);
  const h1 = ov.resolve('hl1');
  assert.equal(h1, ov.resolve('hl2'));
  assert.equal(h1, packId(1, hl.key));
  assert.deepEqual(unpackId(h1, 2), { layerIndex: 1, key: hl.key });
  assert.equal(ov.getattr(h1).ino, h1);
  assert.equal(ov.resolve('d'), packId(0, top.lookup(top.root(), b('d'))!.key), 'merged dir takes its topmost layer');
  assert.equal(ov.resolve('d/a'), packId(1, bottom.lookup(bottom.lookup(bottom.root(), b('d'))!, b('a'))!.key));
  const all = new Set<bigint>();
  const walk = (id: bigint): void => {
    for (const e of ov.readdir(id)) {
      all.add(e.id);
      if ((e.attr.mode & 0o170000) === 0o040000) walk(e.id);
    }
  };
  walk(ov.rootId);
  assert.equal(all.size, 11, 'distinct entries, hl1/hl2 counted once');
});

test('typed errors', () => {
  const { ov } = twoLayers();
  const f = ov.resolve('f');
  const d = ov.resolve('d');
  const is = (code: string, errno: number) => (e: unknown) => e instanceof OverlayError && e.code === code && e.errno === errno;
  assert.throws(() => ov.resolve('nope'), is('ENOENT', 2));
  assert.throws(() => ov.resolve('f/x'), is('ENOTDIR', 20));
  assert.throws(() => ov.readdir(f), is('ENOTDIR', 20));
  assert.throws(() => ov.lookup(f, b('x')), is('ENOTDIR', 20));
  assert.throws(() => ov.read(d, 0, 1), is('EISDIR', 21));
  assert.throws(() => ov.read(ov.resolve('link'), 0, 1), is('EINVAL', 22));
  assert.throws(() => ov.read(f, -1, 1), is('EINVAL', 22));
  assert.throws(() => ov.read(f, 0, 1.5), is('EINVAL', 22));
  assert.throws(() => ov.readlink(f), is('EINVAL', 22));
  assert.throws(() => ov.readlink(d), is('EINVAL', 22));
  for (const bad of ['', '.', '..', 'a/b', 'a\0b']) assert.throws(() => ov.lookup(d, b(bad)), is('EINVAL', 22), bad);
  assert.throws(() => ov.getattr(0n), is('ESTALE', 116));
  assert.throws(() => ov.getattr(1n), is('ESTALE', 116));
  assert.throws(() => ov.getattr(packId(2, 5)), is('ESTALE', 116), 'layer index out of range');
  assert.throws(() => ov.getattr(packId(0, 99999)), is('ESTALE', 116), 'key the layer does not know');
  assert.throws(() => ov.getattr(-5n), is('ESTALE', 116));
  assert.throws(() => ov.getattr(1n << 70n), is('ESTALE', 116));
  assert.throws(() => new Overlay([]), LayerSetupError);
  assert.throws(() => new Overlay([new MemLayer(file('x'))]), LayerSetupError);
  assert.throws(() => new Overlay([new MemLayer(dir({}, { key: 2 ** 48 }))]), LayerSetupError);
});

test('odd layer content never crashes: bad names, duplicates, whiteouts everywhere, odd opaque values', () => {
  const layer = new MemLayer(
    dir([
      ['', file('empty name')],
      ['.', file('dot')],
      ['..', file('dotdot')],
      [b('a/b'), file('slash')],
      [b('a\0b'), file('nul')],
      ['dup', file('first')],
      ['dup', file('second')],
      ['.wh.', file('')],
      ['.wh..wh.plnk', dir({})],
      ['ok', file('ok')],
    ]),
  );
  const ov = new Overlay([layer]);
  assert.deepEqual(names(ov, ov.rootId), ['dup', 'ok']);
  assert.equal(ov.read(ov.resolve('dup'), 0, 10).toString(), 'first');

  // "yes" and "x" are not "y"; an xwhiteout is an EMPTY regular file only.
  const low = new MemLayer(dir({ o1: dir({ l: file('l') }), o2: dir({ l: file('l') }), o3: dir({ l: file('l') }) }));
  const up = new MemLayer(
    dir({
      o1: dir({}, { xattrs: xattrs({ 'trusted.overlay.opaque': 'yes' }) }),
      o2: dir({ n: file('not empty', { xattrs: xattrs({ 'user.overlay.whiteout': 'y' }) }) }, { xattrs: xattrs({ 'user.overlay.opaque': 'x' }) }),
      o3: dir({ l: file('', { xattrs: xattrs({ 'trusted.overlay.whiteout': '' }) }) }, { xattrs: xattrs({ 'trusted.overlay.opaque': 'y' }) }),
    }),
  );
  const ov2 = new Overlay([up, low]);
  assert.deepEqual(names(ov2, ov2.resolve('o1')), ['l']);
  assert.deepEqual(names(ov2, ov2.resolve('o2')), ['l', 'n']);
  assert.deepEqual(names(ov2, ov2.resolve('o3')), []);
  assert.equal(ov2.lookup(ov2.resolve('o3'), b('l')), undefined);
});

test('listing cache: bounded by bytes, reused while it fits, lookups served from it', () => {
  const kids: Record<string, MemNode> = {};
  for (let i = 0; i < 40; i++) {
    const entries: Record<string, MemNode> = {};
    for (let j = 0; j < 100; j++) entries[`file-${j}`] = file(`${i}/${j}`);
    kids[`dir${i}`] = dir(entries);
  }
  const layer = new MemLayer(dir(kids));
  const budget = 100 * 1024;
  const ov = new Overlay([layer], { listingCacheBytes: budget });
  const dirIds = ov.readdir(ov.rootId).map((e) => e.id);
  for (const id of dirIds) assert.equal(ov.readdir(id).length, 100);
  const st = ov.stats();
  assert.ok(st.listingBytes <= budget, `${st.listingBytes} <= ${budget}`);
  assert.ok(st.cachedListings > 1 && st.cachedListings < 41, `${st.cachedListings} listings cached`);
  // The most recent listing is cached: listing and looking up again do not ask the layer.
  const last = dirIds[dirIds.length - 1]!;
  const before = { ...layer.calls };
  assert.equal(ov.readdir(last).length, 100);
  assert.equal(ov.lookup(last, b('file-7'))?.id, ov.readdir(last)[ov.readdir(last).findIndex((e) => e.name.equals(b('file-7')))]!.id);
  assert.equal(ov.lookup(last, b('file-x')), undefined);
  assert.deepEqual(layer.calls, before);
  // An evicted listing is rebuilt, identical.
  const firstAgain = ov.readdir(dirIds[0]!);
  assert.ok(layer.calls.readdir > before.readdir);
  assert.equal(firstAgain[0]!.name.toString(), 'file-0');
});

test('forget drops a directory record; listing the parent again brings it back', () => {
  const { ov } = twoLayers();
  const listed = ov.readdir(ov.rootId).find((e) => e.name.equals(b('d')))!;
  assert.equal(ov.readdir(listed.id).length, 3, 'a readdir-provided dir id resolves without lookup');
  ov.forget(listed.id);
  assert.throws(() => ov.readdir(listed.id), { code: 'ESTALE' });
  assert.throws(() => ov.getattr(listed.id), { code: 'ESTALE' });
  ov.readdir(ov.rootId);
  assert.equal(ov.getattr(listed.id).nlink, 1);
  ov.forget(ov.rootId);
  assert.equal(ov.readdir(ov.rootId).length, 7, 'the root is never forgotten');
  const before = ov.stats().knownDirs;
  ov.forget(listed.id);
  assert.equal(ov.stats().knownDirs, before - 1);
  // A lookup answered from the cached listing records the stack again, too.
  assert.equal(ov.lookup(ov.rootId, b('d'))?.id, listed.id);
  assert.equal(ov.readdir(listed.id).length, 3);
});
