/**
 * Self-test of the shared test infrastructure. Each check here can fail: the source tree must
 * really contain what it promises, an image built by mksquashfs must read back identically
 * through the kernel and through unsquashfs, and a deliberately altered copy must be reported
 * field by field — otherwise every test built on top of this would pass vacuously.
 *
 * Fields that legitimately differ between the ext4 source and a squashfs image (measured here,
 * and why the snapshot does not record or compare them):
 *   - directory st_size: filesystem-specific (ext4 4096-multiples, squashfs the packed listing
 *     size + 3), never compared;
 *   - atime, ctime, st_ino, st_dev, st_blocks, st_blksize: not part of a snapshot (squashfs has a
 *     single mtime; inode numbers are renumbered; block counts depend on the storage);
 *   - sub-second mtimes: squashfs stores whole u32 seconds (the tree uses whole seconds only;
 *     negative times or times >= 2^32 would be wrapped modulo 2^32 by mksquashfs);
 *   - security.* and system.* xattrs: host LSM labels/ACLs, excluded from snapshots;
 *   - xattrs on symlinks: mksquashfs 4.5.1 drops them (the tree sets none).
 * Everything else — types, modes incl. setuid/setgid/sticky, uids/gids up to 4e9, u32 mtimes,
 * device numbers, sockets, fifos, hard-link groups, directory link counts, symlink targets,
 * user.* and trusted.* xattrs, content — matches exactly, as this test asserts.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, lutimesSync, mkdirSync, readdirSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  assertNoLeftovers,
  compareSnapshots,
  countTypes,
  devMajor,
  devMinor,
  expectedFromSource,
  generateTree,
  hashFile,
  imageCache,
  isMounted,
  keyToName,
  keyToPath,
  LeftoversError,
  listLoopDevices,
  makeTempDir,
  nameToKey,
  Prng,
  removeTestUser,
  ensureTestUser,
  run,
  runAsUserInUserns,
  snapshotDir,
  trackMount,
  unmountSync,
  unsquashfsTo,
  useCleanup,
  variantByName,
  withLoopMount,
  withOverlayMount,
  type EntrySnap,
  type Snapshot,
  type TreeInfo,
} from './lib/index.js';

const suite = useCleanup({ after });
let tree: TreeInfo;
let source: Snapshot;

before(async () => {
  const dir = makeTempDir('lib-src', suite);
  tree = await generateTree(join(dir, 'tree'), { big: false });
  source = await snapshotDir(tree.root);
});

after(() => {
  suite.run();
  assertNoLeftovers();
});

function entry(s: Snapshot, key: string): EntrySnap {
  const e = s.get(key);
  assert.ok(e, `no entry ${key}`);
  return e;
}

describe('names', () => {
  test('keys round-trip any byte string and are readable for UTF-8', () => {
    assert.equal(nameToKey(Buffer.from('héllo')), 'héllo');
    assert.equal(nameToKey(Buffer.from([0x61, 0xff])), 'a\\xff');
    assert.equal(nameToKey(Buffer.from('a\\b')), 'a\\x5cb');
    assert.equal(nameToKey(Buffer.from('a\nb')), 'a\\x0ab');
    const rng = new Prng(99);
    const seen = new Map<string, string>();
    for (let i = 0; i < 5000; i++) {
      const n = Buffer.alloc(1 + rng.below(12));
      rng.fill(n);
      // Bias towards ASCII and backslashes, where collisions would hide.
      for (let j = 0; j < n.length; j++) if (rng.below(2)) n[j] = [0x5c, 0x78, 0x61, 0x30][rng.below(4)]!;
      const k = nameToKey(n);
      assert.deepEqual(keyToName(k), n, `round trip of ${n.toString('hex')}`);
      const prev = seen.get(k);
      assert.ok(prev === undefined || prev === n.toString('hex'), `collision on ${k}`);
      seen.set(k, n.toString('hex'));
    }
  });
});

describe('source tree', () => {
  test('contains every kind of entry with the promised attributes', async () => {
    const s = source;
    const types = countTypes(s);
    assert.equal(types.socket, 1);
    assert.ok(types.fifo >= 2);
    assert.equal(types.char, 3);
    assert.equal(types.block, 2);
    assert.ok(types.symlink >= 40 && types.dir >= 90 && types.file >= 700, JSON.stringify(types));

    for (const [key, size] of [['/files/s0-random', 0], ['/files/s1-random', 1], ['/files/r4097', 4097], ['/files/r131073', 131073]] as const) {
      assert.equal(entry(s, key).size, size, key);
    }
    assert.equal(entry(s, tree.paths.compressible20M!).size, 20 * 1024 * 1024);
    assert.equal(entry(s, tree.paths.sparse100M!).size, 100 * 1024 * 1024 + 123);
    // The sparse file really has holes: far fewer blocks allocated than its size.
    assert.ok(statSync(keyToPath(tree.root, tree.paths.sparse100M!)).blocks * 512 < 2 * 1024 * 1024);
    assert.equal(entry(s, tree.paths.duplicates[0]!).sha256, entry(s, tree.paths.duplicates[1]!).sha256);

    assert.equal(readdirSync(keyToPath(tree.root, tree.paths.dir700)).length, 700);
    assert.equal(tree.paths.deepLeaf.split('/').length - 3, 40, tree.paths.deepLeaf);
    assert.ok(s.has(tree.paths.deepLeaf));
    assert.equal(keyToName(tree.paths.longName.split('/').pop()!).length, 255);
    assert.equal(keyToName(tree.paths.longUtf8Name.split('/').pop()!).length, 255);
    for (const k of tree.paths.nonUtf8Names) assert.ok(k.includes('\\x') && s.has(k), k);

    assert.equal(entry(s, tree.paths.symlinks.long).target!.length, 4000);
    assert.equal(entry(s, tree.paths.symlinks.long).size, 4000);
    assert.equal(entry(s, tree.paths.symlinks.absolute).target, '/etc/hostname');
    assert.equal(entry(s, tree.paths.symlinks.nonUtf8Target).target, 'caf\\xe9/\\xff');

    const group = tree.paths.hardlinks.map((k) => entry(s, k));
    assert.deepEqual(group.map((e) => e.nlink), [3, 3, 3]);
    assert.deepEqual(new Set(group.map((e) => e.linkGroup)), new Set(['/hard/a/one']));

    const big = entry(s, '/special/char-4095-1048575');
    assert.deepEqual([devMajor(big.rdev!), devMinor(big.rdev!)], [4095, 1048575]);
    const blk = entry(s, '/special/block-259-300000');
    assert.deepEqual([blk.type, devMajor(blk.rdev!), devMinor(blk.rdev!)], ['block', 259, 300000]);

    assert.equal(entry(s, tree.paths.setuid).mode & 0o7777, 0o4755);
    assert.equal(entry(s, tree.paths.setgid).mode & 0o7777, 0o2755);
    assert.equal(entry(s, tree.paths.stickyDir).mode & 0o7777, 0o1777);
    assert.equal(entry(s, tree.paths.mode000File).mode & 0o7777, 0);
    assert.equal(entry(s, tree.paths.mode000Dir).mode & 0o7777, 0);
    assert.deepEqual(
      tree.paths.owners.map((k) => `${entry(s, k).uid}:${entry(s, k).gid}`),
      ['0:0', '1000:1000', '65534:65534', '123456:654321', '4000000000:4000000001', '1000:1000', '1000:2000', '65534:65534'],
    );

    assert.equal(entry(s, tree.paths.xattrBig).xattrs['user.big']!.length, 6000);
    const shared = new Set(tree.paths.xattrShared.map((k) => entry(s, k).xattrs['user.shared']));
    assert.equal(shared.size, 1);
    assert.equal(tree.paths.xattrShared.length, 30);
    assert.equal(entry(s, '/xattrs/small').xattrs['trusted.small'], Buffer.from('trusted value').toString('hex'));
    assert.equal(entry(s, '/xattrs/empty-value').xattrs['user.empty'], '');
    assert.equal(entry(s, '/xattrs/many-names').xattrs['user.attr39'], Buffer.from('value 39').toString('hex'));
    assert.equal(entry(s, tree.paths.fifo).xattrs['trusted.fifo'], Buffer.from('on a fifo').toString('hex'));
    // getfattr quotes these names; the parser must map them back to the right entries.
    assert.equal(entry(s, '/names/new\\x0aline').xattrs['user.quoted'], Buffer.from('new\nline').toString('hex'));
    assert.equal(entry(s, '/names/back\\x5cslash').xattrs['user.quoted'], Buffer.from('back\\slash').toString('hex'));
    assert.equal(entry(s, '/names/latin1-caf\\xe9').xattrs['user.bytes'], Buffer.from('latin1-caf\xe9', 'latin1').toString('hex'));
    assert.deepEqual(entry(s, '/').xattrs, { 'user.root': Buffer.from('on the root').toString('hex') });

    for (const [key, t] of Object.entries(tree.paths.mtimes)) assert.equal(entry(s, key).mtime, t, key);
    assert.deepEqual(new Set(Object.values(tree.paths.mtimes)), new Set([0, 2 ** 31 - 1, 2 ** 31, 3e9, 2 ** 32 - 1, 2 ** 31 + 12345]));
    assert.equal(countTypes(new Map([...s].filter(([k]) => k === tree.paths.emptyDir))).dir, 1);
    assert.equal(readdirSync(keyToPath(tree.root, tree.paths.emptyDir)).length, 0);

    // Content hashes agree with an independent tool.
    const probe = keyToPath(tree.root, '/files/s999999-mixed').toString('utf8');
    const out = (await run(['sha256sum', '--', probe])).stdout.toString('utf8').split(' ')[0];
    assert.equal(entry(s, '/files/s999999-mixed').sha256, out);
    assert.equal(await hashFile(probe), out);
  });

  test('is deterministic: a second generation (other umask, no medium files) snapshots identically', async (t) => {
    const stack = useCleanup(t);
    // A different umask must not change anything: every mode is set explicitly.
    const oldUmask = process.umask(0o077);
    let again: TreeInfo;
    try {
      again = await generateTree(join(makeTempDir('lib-src2', stack), 'tree'), { medium: false });
    } finally {
      process.umask(oldUmask);
    }
    const s2 = await snapshotDir(again.root);
    const withoutMedium = (k: string): boolean => k === tree.paths.compressible20M || k === tree.paths.sparse100M;
    assert.deepEqual(compareSnapshots(source, s2, { ignorePaths: withoutMedium }), []);
  });
});

describe('images', () => {
  for (const name of ['gzip-128K', 'zstd-128K']) {
    test(`${name}: kernel loop mount and unsquashfs both equal the source`, async (t) => {
      const stack = useCleanup(t);
      const variant = variantByName(name);
      const img = await imageCache.get(tree.root, variant);
      assert.ok(img.bytes > 1024 * 1024, `image is ${img.bytes} bytes`);
      assert.equal(await imageCache.get(tree.root, variant), img, 'cache returns the same build');
      const expected = expectedFromSource(source, variant);

      const mounted = await withLoopMount(img.file, async (mnt) => {
        assert.ok(isMounted(mnt));
        return snapshotDir(mnt);
      });
      assert.deepEqual(compareSnapshots(expected, mounted), []);

      const out = join(makeTempDir('lib-unsq', stack), 'out');
      const summary = await unsquashfsTo(img.file, out);
      assert.match(summary, /created 1 socket/);
      const extracted = await snapshotDir(out);
      assert.deepEqual(compareSnapshots(expected, extracted), []);

      // Directory sizes are the one stat field that differs (and is never compared).
      const dirSize = (s: Snapshot): number => entry(s, '/many').size;
      assert.notEqual(dirSize(source), dirSize(mounted));
    });
  }
});

describe('variant facts', () => {
  test('-no-xattrs: the kernel answers EOPNOTSUPP, read as no xattrs; lzma: unsquashfs only', async (t) => {
    const stack = useCleanup(t);
    const src = join(makeTempDir('lib-tiny', stack), 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'tiny\n');
    await run(['setfattr', '-n', 'user.x', '-v', 'y', join(src, 'f')]);
    const tiny = await snapshotDir(src);

    const noX = variantByName('gzip-no-xattrs');
    const img = await imageCache.get(src, noX);
    const mounted = await withLoopMount(img.file, (mnt) => snapshotDir(mnt));
    assert.deepEqual(compareSnapshots(expectedFromSource(tiny, noX), mounted), []);
    assert.deepEqual(compareSnapshots(tiny, mounted), ['/f: xattr user.x expected 0x79, got (absent)']);

    const lzma = variantByName('lzma-128K');
    assert.equal(lzma.kernelMountable, false);
    const limg = await imageCache.get(src, lzma);
    await assert.rejects(withLoopMount(limg.file, () => undefined), /mount/);
    const out = join(makeTempDir('lib-tiny-out', stack), 'out');
    await unsquashfsTo(limg.file, out);
    assert.deepEqual(compareSnapshots(tiny, await snapshotDir(out)), []);
    assertNoLeftovers();
  });
});

describe('compareSnapshots', () => {
  test('reports every kind of change in an altered copy', async (t) => {
    const stack = useCleanup(t);
    const variant = variantByName('gzip-128K');
    const img = await imageCache.get(tree.root, variant);
    const copy = join(makeTempDir('lib-mut', stack), 'copy');
    await unsquashfsTo(img.file, copy);
    const p = (k: string): Buffer => keyToPath(copy, k);
    const keepMtime = (k: string, fn: () => void): void => {
      const st = statSync(p(k));
      fn();
      lutimesSync(p(k), st.atime, st.mtime);
    };
    const target = '/files/s4096-mixed';
    keepMtime(target, () => {
      const buf = Buffer.alloc(4096);
      buf.fill(0x5a);
      writeFileSync(p(target), buf);
    });
    chmodSync(p('/perms/all'), 0o755);
    chownSync(p('/owners/u1000-g1000'), 1001, 1000);
    await run(['setfattr', '-x', 'user.small', p('/xattrs/small').toString('utf8')]);
    await run(['setfattr', '-n', 'user.big', '-v', '0x00', p(tree.paths.xattrBig).toString('utf8')]);
    keepMtime('/hard', () => unlinkSync(p('/hard/three')));
    keepMtime('/links', () => {
      unlinkSync(p('/links/dangling'));
      symlinkSync('somewhere/else', p('/links/dangling'));
    });
    lutimesSync(p('/links/dangling'), 1_000_000, 1_000_000);
    keepMtime('/names', () => writeFileSync(p('/names/new-file'), 'new'));
    lutimesSync(p('/mtimes/file-zero'), 1, 1);

    const diffs = compareSnapshots(source, await snapshotDir(copy));
    assert.deepEqual(diffs, [
      `/files/s4096-mixed: sha256 expected ${entry(source, target).sha256}, got ${await hashFile(p(target))}`,
      '/hard/a/one: nlink expected 3, got 2',
      '/hard/b/two: nlink expected 3, got 2',
      '/hard/three: missing (expected file)',
      `/links/dangling: mtime expected ${entry(source, '/links/dangling').mtime}, got 1000000`,
      '/links/dangling: target expected "does/not/exist", got "somewhere/else"',
      '/mtimes/file-zero: mtime expected 0, got 1',
      '/names/new-file: unexpected file',
      '/owners/u1000-g1000: uid expected 1000, got 1001',
      '/perms/all: mode expected 0100777, got 0100755',
      `/xattrs/big-3000: xattr user.big expected 0x${entry(source, tree.paths.xattrBig).xattrs['user.big']!.slice(0, 64)}…(3000 bytes), got 0x00`,
      `/xattrs/small: xattr user.small expected 0x${Buffer.from('hello').toString('hex')}, got (absent)`,
    ]);

    // Ignoring fields hides exactly those differences.
    const ignored = compareSnapshots(source, await snapshotDir(copy), {
      ignore: ['sha256', 'nlink', 'mtime', 'target', 'uid', 'mode', 'xattrs'],
    });
    assert.deepEqual(ignored, ['/hard/three: missing (expected file)', '/names/new-file: unexpected file']);
    // A type change is reported once, not as a cascade of field differences.
    const changed = new Map(source);
    changed.set('/perms/all', { ...entry(source, '/perms/all'), type: 'dir' });
    assert.deepEqual(compareSnapshots(source, changed), ['/perms/all: type expected file, got dir']);
    // Device numbers are compared as major:minor.
    const dev = new Map(source);
    dev.set('/special/char-1-3', { ...entry(source, '/special/char-1-3'), rdev: entry(source, '/special/block-7-200').rdev! });
    assert.deepEqual(compareSnapshots(source, dev), ['/special/char-1-3: rdev expected 1:3, got 7:200']);
  });
});

describe('kernel helpers', () => {
  test('withLoopMount unmounts, detaches and removes its dir when the callback throws', async () => {
    const img = await imageCache.get(tree.root, variantByName('gzip-128K'));
    let seen = '';
    await assert.rejects(
      withLoopMount(img.file, (mnt) => {
        seen = mnt;
        assert.ok(existsSync(join(mnt, 'special')));
        throw new Error('callback failed');
      }),
      /callback failed/,
    );
    assert.ok(seen && !isMounted(seen) && !existsSync(seen));
    assert.deepEqual(listLoopDevices().filter((l) => l.backFile === img.file), []);
    assertNoLeftovers();
  });

  test('withOverlayMount: top-first lower layers, optional upper with userxattr', async (t) => {
    const stack = useCleanup(t);
    const base = makeTempDir('lib-ovl', stack);
    const [bottom, top, upper] = ['bottom', 'top', 'upper'].map((n) => join(base, n));
    for (const d of [bottom, top, upper]) mkdirSync(d!);
    writeFileSync(join(bottom!, 'a'), 'bottom a');
    writeFileSync(join(bottom!, 'b'), 'bottom b');
    writeFileSync(join(top!, 'b'), 'top b');
    writeFileSync(join(top!, 'c'), 'top c');
    const names = await withOverlayMount([top!, bottom!], async (mnt) => {
      const s = await snapshotDir(mnt);
      assert.equal(entry(s, '/b').sha256, await hashFile(join(top!, 'b')));
      return [...s.keys()].sort();
    });
    assert.deepEqual(names, ['/', '/a', '/b', '/c']);
    const single = await withOverlayMount([bottom!], (mnt) => readdirSync(mnt).sort());
    assert.deepEqual(single, ['a', 'b']);
    await withOverlayMount(
      [top!, bottom!],
      (mnt) => {
        writeFileSync(join(mnt, 'new'), 'written through overlay');
        unlinkSync(join(mnt, 'a'));
      },
      { upper: upper!, userxattr: true },
    );
    assert.ok(existsSync(join(upper!, 'new')));
    // The deletion of a lower file is a whiteout (char 0:0) in the upper dir.
    const wh = (await snapshotDir(upper!)).get('/a');
    assert.ok(wh && wh.type === 'char' && devMajor(wh.rdev!) === 0 && devMinor(wh.rdev!) === 0);
    assert.deepEqual(readdirSync(base).sort(), ['bottom', 'top', 'upper'], 'work dir removed');
  });

  test('assertNoLeftovers reports a mount that was not cleaned up', async (t) => {
    const stack = useCleanup(t);
    const dir = makeTempDir('lib-leak', stack);
    trackMount(dir);
    await run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'leaktest', dir]);
    try {
      assert.throws(() => assertNoLeftovers(), (e: unknown) => e instanceof LeftoversError && e.message.includes(dir));
    } finally {
      unmountSync(dir);
    }
    assertNoLeftovers();
  });
});

describe('users', () => {
  test('runAsUserInUserns runs as root inside a namespace owned by the test user', async (t) => {
    const stack = useCleanup(t);
    const name = 'atomfs-test-lib';
    removeTestUser(name);
    const user = ensureTestUser(name, stack);
    assert.ok(user.uid > 0);
    assert.deepEqual(ensureTestUser(name), user, 'second call reuses the user');
    const r = await runAsUserInUserns(name, ['sh', '-c', 'id -u; cat /proc/self/uid_map; touch /root/x 2>/dev/null || echo no-root']);
    assert.equal(r.status, 0, r.stderr.toString());
    const [uid, map, rootAccess] = r.stdout.toString('utf8').trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    assert.equal(uid, '0');
    assert.equal(map, `0 ${user.uid} 1`);
    assert.equal(rootAccess, 'no-root');
    stack.run();
    assert.equal((await run(['id', '-u', name], { allowFail: true })).status, 1, 'user removed at cleanup');
  });
});
