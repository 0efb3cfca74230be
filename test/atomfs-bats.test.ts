/**
 * The 12 cases of Go atomfs's bats suite (priv-mount, priv-mount-umount-mount, priv-verify,
 * unpriv-guestmount), as node tests asserting what they meant — with our design where it differs
 * on purpose: there is no device-mapper here, so verity images are served by our FUSE server,
 * which checks every block (a guest mount is verified too, and `verify` works on it).
 *
 * Images are built like bats' `build_image_at` does with stacker: `test-squashfs` = two layers
 * (/1.README.md, then /random.txt ≈ 1.4 MB of base64 text) in `oci` (verity), `oci-no-verity`
 * (no root hashes) and `oci-pre-erofs` (stacker v1.0.x media type + annotation); the
 * mount-umount trees = a base image + a `touch /base` layer, and a, b, c on top of it.
 */
import assert from 'node:assert/strict';
import { chownSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import type { WrittenImage } from '@atomfs/oci';
import { chmodDevFuse, ensureTestUser, hashFile, makeContent, metadirName, processCleanup, readMountinfo, type TestUser } from './lib/index.js';
import {
  atomfs,
  atomfsOk,
  cleanAtomfsAtEnd,
  leftoversUnder,
  loopsUnder,
  mntnsId,
  nsDirState,
  runPlanInUserns,
  serversUnder,
  resetAfterTest,
  showResult,
  type CliResult,
} from './atomfs-cli.js';
import type { StepResult } from './atomfs-userns-driver.js';
import { makeSharedTempDir, overlayRounds, packLayer, patchFile, writeImage, MEDIA_TYPE_LEGACY, ANNOTATION_LEGACY, type LayerFile } from './oci-images.js';

const USER = 'atomfs-test-bats';
const README = '# Just a file to import into a scratch stacker image\n';

let user: TestUser;
let work = '';
let runDir = '';
/** ATOMFS_TEST_RUN_DIR of the guest cases (a user-owned one, as bats' unpriv suite has its own). */
let guestRunDir = '';
let randomTxt = '';
/** `<layout>:test-squashfs` images, bottom layer first in `.layers`. */
const test1: Record<'oci' | 'noVerity' | 'preErofs', { dir: string; written: WrittenImage }> = {} as never;
/** Layer files of the test image (bottom-first), verity and plain. */
let test1Layers: { verity: LayerFile[]; plain: LayerFile[] };
/** The trees layouts: tags base-, a-, b-, c-squashfs. */
let treesVerity = '';
let treesPlain = '';
const treeImages = new Map<string, WrittenImage>();

/** base64 of 1 MiB of (seeded) random bytes in 76-column lines, like `base64 < /dev/random`. */
function randomText(): string {
  const b64 = makeContent('random', 1024 * 1024, 2048).toString('base64');
  return b64.replace(/.{76}/g, '$&\n') + '\n';
}

before(async () => {
  user = ensureTestUser(USER, processCleanup);
  chmodDevFuse();
  work = makeSharedTempDir('bats', processCleanup);
  cleanAtomfsAtEnd(processCleanup, work);
  // Root's runtime dir is root's: atomfs refuses mount state another user could change.
  runDir = join(work, 'run');
  mkdirSync(runDir, { mode: 0o755 });
  guestRunDir = userDir('run-guest');
  const src = join(work, 'src');
  mkdirSync(src);
  randomTxt = join(src, 'random.txt');
  writeFileSync(randomTxt, randomText());
  writeFileSync(join(src, '1.README.md'), README);

  // 1.stacker.yaml: test_base imports 1.README.md into scratch; test imports random.txt on top.
  const layers = join(work, 'layers');
  mkdirSync(layers);
  const base = join(layers, 'test_base');
  mkdirSync(base);
  writeFileSync(join(base, '1.README.md'), README);
  const [top] = await overlayRounds(layers, [base], [`cp ${randomTxt} random.txt`], 'test');
  const sq = join(work, 'sq');
  mkdirSync(sq);
  test1Layers = {
    verity: [await packLayer(base, join(sq, 'test_base.v.sqfs')), await packLayer(top!, join(sq, 'test.v.sqfs'))],
    plain: [await packLayer(base, join(sq, 'test_base.sqfs'), { verity: false }), await packLayer(top!, join(sq, 'test.sqfs'), { verity: false })],
  };
  test1.oci = { dir: join(work, 'oci'), written: await writeImage(join(work, 'oci'), 'test-squashfs', test1Layers.verity) };
  test1.noVerity = {
    dir: join(work, 'oci-no-verity'),
    written: await writeImage(join(work, 'oci-no-verity'), 'test-squashfs', test1Layers.plain, { noRootHash: true }),
  };
  test1.preErofs = {
    dir: join(work, 'oci-pre-erofs'),
    written: await writeImage(join(work, 'oci-pre-erofs'), 'test-squashfs', test1Layers.verity, { legacy: true }),
  };

  // mount-umount-trees.stacker.yaml: base (a small busybox-like tree) + `touch /base`; a, b, c on it.
  const bb = join(layers, 'busybox');
  mkdirSync(join(bb, 'bin'), { recursive: true });
  mkdirSync(join(bb, 'etc'));
  writeFileSync(join(bb, 'bin/busybox'), '#!/bin/false\n# stands in for busybox\n', { mode: 0o755 });
  writeFileSync(join(bb, 'etc/os-release'), 'NAME=busybox-ish\n');
  symlinkSync('busybox', join(bb, 'bin/sh'));
  const [baseTouch] = await overlayRounds(layers, [bb], ['touch base'], 'base');
  const uniq: Record<string, string> = {};
  for (const n of ['a', 'b', 'c']) [uniq[n]] = await overlayRounds(layers, [bb, baseTouch!], [`touch ${n}`], n);
  const bbV = await packLayer(bb, join(sq, 'busybox.v.sqfs'));
  const bbP = await packLayer(bb, join(sq, 'busybox.sqfs'), { verity: false });
  const btV = await packLayer(baseTouch!, join(sq, 'base.v.sqfs'));
  const btP = await packLayer(baseTouch!, join(sq, 'base.sqfs'), { verity: false });
  treesVerity = join(work, 'trees-oci');
  treesPlain = join(work, 'trees-oci-no-verity');
  for (const n of ['a', 'b', 'c']) {
    const v = await packLayer(uniq[n]!, join(sq, `${n}.v.sqfs`));
    const p = await packLayer(uniq[n]!, join(sq, `${n}.sqfs`), { verity: false });
    treeImages.set(`verity:${n}`, await writeImage(treesVerity, `${n}-squashfs`, [bbV, btV, v]));
    treeImages.set(`plain:${n}`, await writeImage(treesPlain, `${n}-squashfs`, [bbP, btP, p], { noRootHash: true }));
  }
});
afterEach(() => resetAfterTest(work, [runDir, guestRunDir, join(work, 'guest-metadir-meta')]));
after(() => processCleanup.run());

/** A dir under the work dir owned by the test user (mountpoints, persist dirs, metadirs). */
function userDir(name: string): string {
  const d = join(work, name);
  mkdirSync(d, { recursive: true });
  chownSync(d, user.uid, user.gid);
  return d;
}

function mp(name: string): string {
  return userDir(`mp-${name}`);
}

const ref = (layout: string, tag = 'test-squashfs'): string => `${layout}:${tag}`;

function assertOk(r: CliResult, what: string): void {
  assert.equal(r.status, 0, `${what}: ${showResult(r)}`);
}

/**
 * After an umount: target empty, meta/<mntns>/ present and empty, nothing left anywhere. A mount
 * refused before it started (`beforeMetadir`) may not have created meta/<mntns>/ at all.
 */
function assertAllClean(target: string, beforeMetadir = false): void {
  assert.ok(existsSync(target), 'target still exists');
  assert.deepEqual(readdirSync(target), [], 'target is empty');
  const ns = nsDirState(runDir);
  if (beforeMetadir && ns === 'missing') assert.ok(true);
  else assert.equal(ns, 'empty', 'meta/<mntns>/ exists and is empty');
  assert.deepEqual(leftoversUnder(work), [], 'no mounts, loop devices or servers left');
}

/** The FUSE server's log of the mount at `target` (for failure messages). */
function serverLog(target: string): string {
  const f = join(runDir, 'meta', mntnsId(), metadirName(target), 'server.log');
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter((l) => !l.startsWith('    at ')).slice(-15).join('\n') : `(no ${f})`;
}

/** Reading `file` fails with EIO (and the server is still alive to say so). */
function assertEIO(file: string, target: string, what: string): void {
  let err: unknown;
  try {
    readFileSync(file);
  } catch (e) {
    err = e;
  }
  assert.equal((err as NodeJS.ErrnoException | undefined)?.code, 'EIO', `${what}: got ${String(err)}\nserver log:\n${serverLog(target)}`);
}

const digestsOf = (img: WrittenImage): string[] => img.layers.map((l) => l.digest);

describe('priv-mount.bats', () => {
  test('RO mount/umount and verify of good image works', async () => {
    const m = mp('ro');
    await atomfsOk(['mount', ref(test1.oci.dir), m], { runDir });
    try {
      assert.equal(readFileSync(join(m, '1.README.md'), 'utf8'), README);
      assert.equal(await hashFile(join(m, 'random.txt')), await hashFile(randomTxt));
      assert.notEqual(nsDirState(runDir), 'missing', 'meta/<mntns>/ exists');
      assert.throws(() => writeFileSync(join(m, 'do-not-let-me'), ''), /EROFS/);
      const v = await atomfs(['verify', m], { runDir });
      assertOk(v, 'verify');
      const [bottom, top] = digestsOf(test1.oci.written);
      assert.equal(v.stdout, `${top}: OK\n${bottom}: OK\n`);
    } finally {
      await atomfsOk(['umount', m], { runDir });
    }
    assertAllClean(m);
  });

  test('mount with missing verity data fails', async () => {
    const m = mp('missing-verity');
    const r = await atomfs(['mount', ref(test1.noVerity.dir), m], { runDir });
    assert.equal(r.status, 1, showResult(r));
    assert.match(r.stderr, /^Error: sha256:[0-9a-f]{64} has no root hash/m);
    // Refused before anything was set up: meta/<mntns>/ is empty, or (run alone) not even made.
    assertAllClean(m, true);
  });

  test('mount with missing verity data passes if you ignore it', async () => {
    const m = mp('allow-missing');
    await atomfsOk(['mount', '--allow-missing-verity', ref(test1.noVerity.dir), m], { runDir });
    try {
      assert.equal(readFileSync(join(m, '1.README.md'), 'utf8'), README);
      assert.equal(await hashFile(join(m, 'random.txt')), await hashFile(randomTxt));
      // Nothing to check: verify says so and fails (as Go: "no applicable mounts found").
      const v = await atomfs(['verify', m], { runDir });
      assert.equal(v.status, 1, showResult(v));
      assert.match(v.stderr, /^Error: no applicable mounts found/);
    } finally {
      await atomfsOk(['umount', m], { runDir });
    }
    assertAllClean(m);
  });

  test('mount/umount with writeable overlay', async () => {
    const m = mp('writeable');
    await atomfsOk(['mount', '--writeable', ref(test1.oci.dir), m], { runDir });
    try {
      assert.ok(existsSync(join(m, '1.README.md')) && existsSync(join(m, 'random.txt')));
      writeFileSync(join(m, 'this-time-let-me'), '');
      cpSync(join(m, '1.README.md'), join(m, '3.README.md'));
      assert.equal(readFileSync(join(m, '3.README.md'), 'utf8'), README);
    } finally {
      await atomfsOk(['umount', m], { runDir });
    }
    assertAllClean(m);
    // The changes were ephemeral: a new mount does not have them.
    await atomfsOk(['mount', '--writable', ref(test1.oci.dir), m], { runDir });
    try {
      assert.deepEqual(readdirSync(m).sort(), ['1.README.md', 'random.txt']);
    } finally {
      await atomfsOk(['umount', m], { runDir });
    }
    assertAllClean(m);
  });

  test('mount with writeable overlay in separate dir', async () => {
    const m = mp('persist');
    const p = userDir('persist-dir');
    await atomfsOk(['mount', `--persist=${p}`, ref(test1.oci.dir), m], { runDir });
    try {
      writeFileSync(join(m, 'this-time-let-me'), '');
      cpSync(join(m, '1.README.md'), join(m, '3.README.md'));
    } finally {
      await atomfsOk(['umount', m], { runDir });
    }
    assertAllClean(m);
    assert.ok(existsSync(join(p, 'persist/this-time-let-me')));
    assert.equal(readFileSync(join(p, 'persist/3.README.md'), 'utf8'), README);
    assert.equal(existsSync(join(p, 'persist/1.README.md')), false, 'unchanged files are not copied up');
    // The persisted changes come back with the next mount.
    await atomfsOk(['mount', '--persist', p, ref(test1.oci.dir), m], { runDir });
    try {
      assert.deepEqual(readdirSync(m).sort(), ['1.README.md', '3.README.md', 'random.txt', 'this-time-let-me']);
    } finally {
      await atomfsOk(['umount', m], { runDir });
    }
    assertAllClean(m);
  });

  test('mount of image built with pre-erofs stacker works (legacy media type and annotation)', async () => {
    const manifest = JSON.parse(readFileSync(test1.preErofs.written.manifestPath, 'utf8')) as { layers: { mediaType: string; annotations: Record<string, string> }[] };
    for (const l of manifest.layers) {
      assert.equal(l.mediaType, MEDIA_TYPE_LEGACY);
      assert.deepEqual(Object.keys(l.annotations), [ANNOTATION_LEGACY]);
    }
    const m = mp('pre-erofs');
    await atomfsOk(['mount', ref(test1.preErofs.dir), m], { runDir });
    try {
      assert.equal(readFileSync(join(m, '1.README.md'), 'utf8'), README);
      // The legacy annotation is the root hash actually used: every layer is checked.
      const v = await atomfs(['verify', m], { runDir });
      assertOk(v, 'verify');
      assert.doesNotMatch(v.stdout, /NO ROOT HASH/);
    } finally {
      await atomfsOk(['umount', m], { runDir });
    }
    assertAllClean(m);
  });
});

describe('priv-mount-umount-mount.bats', () => {
  for (const backend of ['fuse', 'kernel'] as const) {
    test(`mount + umount + mount a tree of images works (${backend === 'fuse' ? 'verity, FUSE' : 'no verity, kernel loop+overlay'})`, async () => {
      const layout = backend === 'fuse' ? treesVerity : treesPlain;
      const extra = backend === 'fuse' ? [] : ['--allow-missing-verity'];
      const img = (n: string): WrittenImage => treeImages.get(`${backend === 'fuse' ? 'verity' : 'plain'}:${n}`)!;
      const shared = img('a').layers[0]!.path; // the busybox layer, shared by a, b and c
      assert.equal(img('b').layers[0]!.path, shared);
      const root = userDir(`trees-${backend}`);
      const at = (n: string): string => userDir(`trees-${backend}/${n}`);
      const mount = (n: string) => atomfsOk(['mount', '--backend', backend, ...extra, ref(layout, `${n}-squashfs`), at(n)], { runDir });
      const umount = (n: string) => atomfsOk(['umount', join(root, n)], { runDir });
      const sharedHex = img('a').layers[0]!.digest.slice(7);
      /**
       * How many mounts use the shared layer: kernel squashfs mounts of it (one per image, at
       * <metadir>/mounts/<hex>; mount(8) shares ONE loop device between them), or servers.
       */
      const users = (): number => {
        if (backend === 'fuse') return serversUnder(work).length;
        const n = readMountinfo().filter((x) => x.mountpoint.startsWith(runDir + '/') && x.mountpoint.endsWith(`/mounts/${sharedHex}`)).length;
        assert.equal(loopsUnder(work).filter((l) => l.endsWith(` on ${shared}`)).length > 0, n > 0, 'a loop device on the shared blob exactly while it is mounted');
        return n;
      };
      const mounted: string[] = [];
      try {
        await mount('a');
        mounted.push('a');
        assert.ok(existsSync(join(root, 'a/a')));
        await mount('b');
        mounted.push('b');
        assert.ok(existsSync(join(root, 'b/b')) && !existsSync(join(root, 'b/a')));
        assert.equal(users(), 2);
        await umount('b');
        mounted.splice(mounted.indexOf('b'), 1);
        // Go: /dev/mapper/<shared layer>-verity is still a block device. Here: a still serves it.
        assert.equal(users(), 1, 'the shared layer is still in use by a');
        assert.equal(readFileSync(join(root, 'a/bin/busybox'), 'utf8'), '#!/bin/false\n# stands in for busybox\n');
        assert.ok(existsSync(join(root, 'a/base')));
        await mount('c');
        mounted.push('c');
        await umount('a');
        mounted.splice(mounted.indexOf('a'), 1);
        assert.equal(users(), 1);
        assert.ok(existsSync(join(root, 'c/c')));
        assert.equal(readFileSync(join(root, 'c/bin/sh'), 'utf8'), '#!/bin/false\n# stands in for busybox\n', 'bin/sh (a symlink) resolves');
        await umount('c');
        mounted.splice(mounted.indexOf('c'), 1);
      } finally {
        for (const n of mounted) await atomfs(['umount', join(root, n)], { runDir });
      }
      assert.deepEqual(loopsUnder(work), [], 'no loop devices left');
      for (const n of ['a', 'b', 'c']) assert.deepEqual(readdirSync(join(root, n)), [], `${n} is empty`);
      assert.equal(nsDirState(runDir), 'empty');
      assert.deepEqual(leftoversUnder(work), []);
    });
  }
});

/** A fresh copy of a layout (tamper tests damage blobs). */
function copyLayout(src: string, name: string): string {
  const dst = join(work, name);
  cpSync(src, dst, { recursive: true });
  return dst;
}

/** `dd if=<seeded random> of=BLOB conv=notrunc bs=512 seek=100 count=100`: bytes 51200..102399. */
function ddTamper(blob: string, extend: boolean): void {
  const bytes = makeContent('random', 100 * 512, 8);
  if (extend) {
    // dd writes past the end of a small file, extending it (a hole up to 51200, then the data).
    const fd = readFileSync(blob);
    const out = Buffer.alloc(Math.max(fd.length, 102400));
    fd.copy(out);
    bytes.copy(out, 51200);
    writeFileSync(blob, out);
  } else patchFile(blob, 51200, bytes);
}

describe('priv-verify.bats', () => {
  test('mounting tampered small images fails, deterministically', async () => {
    // The bats case: every squashfs blob gets 100 blocks of random data at block 100. The
    // README layer is only a few KiB, so dd extends it; the random.txt layer is damaged inside
    // its squashfs data. Our mount checks each blob's size against its descriptor (and would
    // catch the data on read): the grown blob makes the mount fail before anything is mounted.
    const layout = copyLayout(test1.oci.dir, 'oci-tampered-all');
    const blobs = test1.oci.written.layers.map((l) => join(layout, 'blobs/sha256', l.digest.slice(7)));
    const before = await Promise.all(blobs.map((b) => hashFile(b)));
    for (const b of blobs) ddTamper(b, true);
    const afterSums = await Promise.all(blobs.map((b) => hashFile(b)));
    for (let i = 0; i < blobs.length; i++) assert.notEqual(afterSums[i], before[i], 'sha256 changed');
    const m = mp('tampered-all');
    for (let run = 0; run < 3; run++) {
      const r = await atomfs(['mount', ref(layout), m], { runDir });
      assert.equal(r.status, 1, showResult(r));
      assert.match(r.stderr, new RegExp(`^Error: blob \\S+/blobs/sha256/${test1.oci.written.layers[0]!.digest.slice(7)}: size mismatch: descriptor says \\d+ bytes, file has 102400 bytes\n$`));
      assertAllClean(m, true);
    }
  });

  test('a tampered data block (same size): mount opens, the damaged file reads EIO, verify reports it', async () => {
    // By design: mount opens every layer and checks its superblock against the root hash; a data
    // block is checked when it is read, and `verify` checks them all.
    const layout = copyLayout(test1.oci.dir, 'oci-tampered-data');
    const [bottom, top] = test1.oci.written.layers;
    ddTamper(join(layout, 'blobs/sha256', top!.digest.slice(7)), false);
    const m = mp('tampered-data');
    await atomfsOk(['mount', ref(layout), m], { runDir });
    try {
      assert.equal(readFileSync(join(m, '1.README.md'), 'utf8'), README);
      assertEIO(join(m, 'random.txt'), m, 'reading the damaged file');
      assertEIO(join(m, 'random.txt'), m, 'and again (nothing bad was cached)');
      const v = await atomfs(['verify', m], { runDir });
      assert.equal(v.status, 1, showResult(v));
      assert.match(v.stdout, new RegExp(`^${top!.digest}: CORRUPTION FOUND`, 'm'));
      assert.match(v.stdout, new RegExp(`^${bottom!.digest}: OK$`, 'm'));
      assert.match(v.stderr, /^Error: Found corrupt devices in molecule$/m);
    } finally {
      await atomfsOk(['umount', m], { runDir });
    }
    assertAllClean(m);
    // Without mounting: verify OCIDIR:TAG says the same.
    const v = await atomfs(['verify', ref(layout)], { runDir });
    assert.equal(v.status, 1, showResult(v));
    assert.match(v.stdout, new RegExp(`^${top!.digest}: CORRUPTION FOUND`, 'm'));
  });

  test('a tampered squashfs superblock fails the mount, naming the layer', async () => {
    const layout = copyLayout(test1.oci.dir, 'oci-tampered-super');
    const top = test1.oci.written.layers[1]!;
    patchFile(join(layout, 'blobs/sha256', top.digest.slice(7)), 0, Buffer.from('hsqX'));
    const m = mp('tampered-super');
    const r = await atomfs(['mount', ref(layout), m], { runDir });
    assert.equal(r.status, 1, showResult(r));
    assert.match(r.stderr, new RegExp(`^Error: layer ${top.digest}: .*does not match`));
    assertAllClean(m);
  });

  test('atomfs verify on a mounted image whose blob is tampered with afterwards', async () => {
    const layout = copyLayout(test1.oci.dir, 'oci-tampered-later');
    const [bottom, top] = test1.oci.written.layers;
    const m = mp('tampered-later');
    await atomfsOk(['mount', ref(layout), m], { runDir });
    try {
      assert.equal(readFileSync(join(m, '1.README.md'), 'utf8'), README);
      assertOk(await atomfs(['verify', m], { runDir }), 'verify before tampering');
      ddTamper(join(layout, 'blobs/sha256', top!.digest.slice(7)), false);
      const v = await atomfs(['verify', m], { runDir });
      assert.equal(v.status, 1, showResult(v));
      assert.match(v.stdout, new RegExp(`^${top!.digest}: CORRUPTION FOUND`, 'm'));
      assert.match(v.stdout, new RegExp(`^${bottom!.digest}: OK$`, 'm'));
      // random.txt was never read before the damage: the running server refuses it too.
      assertEIO(join(m, 'random.txt'), m, 'reading the damaged file');
    } finally {
      await atomfsOk(['umount', m], { runDir });
    }
    assertAllClean(m);
  });
});

describe('unpriv-guestmount.bats (as a user, inside unshare -Umr)', () => {
  const sh = (r: StepResult | undefined): { status: number | null; stdout: string; stderr: string } => {
    if (r === undefined || !('status' in r)) throw new Error(`not a command result: ${JSON.stringify(r)}`);
    return r;
  };
  const configPath = (target: string, runtime = '$ATOMFS_TEST_RUN_DIR'): string =>
    `"${runtime}/meta/$(readlink /proc/self/ns/mnt | cut -c 6-15)/$(systemd-escape --path '${target}')/config.json"`;

  test('guestmount of a verity image works WITHOUT --allow-missing-verity (we verify), verify works, persist lands in P/persist', async () => {
    const m = mp('guest-verity');
    const p = userDir('guest-verity-persist');
    const res = await runPlanInUserns(USER, work, {
      env: { ATOMFS_TEST_RUN_DIR: guestRunDir },
      steps: [
        { mntns: true },
        { atomfs: ['mount', `--persist=${p}`, ref(test1.oci.dir), m] },
        { readFile: join(m, '1.README.md') },
        { exists: join(m, 'random.txt') },
        { write: join(m, 'let-me-write'), data: 'x' },
        { atomfs: ['verify', m] },
        { sh: `cat ${configPath(m)}` },
        { atomfs: ['umount', m] },
        { readdir: m },
      ],
    });
    const ns = (res[0] as { mntns: string }).mntns;
    assert.notEqual(ns, mntnsId(), 'a mount namespace of its own');
    assertOk(sh(res[1]), 'guest mount (Go atomfs refuses this without --allow-missing-verity: squashfuse cannot verify)');
    assert.deepEqual(res[2], { readFile: README });
    assert.deepEqual(res[3], { exists: true });
    assert.deepEqual(res[4], { write: 'ok' });
    const v = sh(res[5]);
    assertOk(v, 'verify inside the namespace');
    assert.equal(v.stdout.trim().split('\n').filter((l) => l.endsWith(': OK')).length, 2);
    const cfg = JSON.parse(sh(res[6]).stdout) as { OCIDir: string; Tag: string; Target: string; AddWriteableOverlay: boolean; WriteableOverlayPath: string };
    assert.deepEqual([cfg.OCIDir, cfg.Tag, cfg.Target, cfg.AddWriteableOverlay, cfg.WriteableOverlayPath], [test1.oci.dir, 'test-squashfs', m, true, p]);
    assertOk(sh(res[7]), 'umount');
    assert.deepEqual(res[8], { readdir: [] });
    assert.equal(readFileSync(join(p, 'persist/let-me-write'), 'utf8'), 'x');
    assert.equal(nsDirState(guestRunDir, ns), 'empty');
    assert.deepEqual(leftoversUnder(work), []);
  });

  test('guestmount works on images without verity (with --allow-missing-verity only)', async () => {
    const m = mp('guest-noverity');
    const p = userDir('guest-noverity-persist');
    const res = await runPlanInUserns(USER, work, {
      env: { ATOMFS_TEST_RUN_DIR: guestRunDir },
      steps: [
        { mntns: true },
        { atomfs: ['mount', `--persist=${p}`, ref(test1.noVerity.dir), m] },
        { atomfs: ['mount', '--allow-missing-verity', `--persist=${p}`, ref(test1.noVerity.dir), m] },
        { readFile: join(m, '1.README.md') },
        { write: join(m, 'let-me-write'), data: 'y' },
        { atomfs: ['verify', m] },
        { atomfs: ['umount', m] },
        { readdir: m },
      ],
    });
    const ns = (res[0] as { mntns: string }).mntns;
    const refused = sh(res[1]);
    assert.equal(refused.status, 1, showResult(refused));
    assert.match(refused.stderr, /has no root hash/);
    assertOk(sh(res[2]), 'mount --allow-missing-verity');
    assert.deepEqual(res[3], { readFile: README });
    assert.deepEqual(res[4], { write: 'ok' });
    const v = sh(res[5]);
    assert.equal(v.status, 1, 'nothing to verify');
    assert.match(v.stderr, /no applicable mounts found/);
    assertOk(sh(res[6]), 'umount');
    assert.deepEqual(res[7], { readdir: [] });
    assert.equal(readFileSync(join(p, 'persist/let-me-write'), 'utf8'), 'y');
    assert.equal(nsDirState(guestRunDir, ns), 'empty');
    assert.deepEqual(leftoversUnder(work), []);
  });

  test('mount with custom metadir and no ATOMFS_TEST_RUN_DIR works as guest', async () => {
    const m = mp('guest-metadir');
    const meta = userDir('guest-metadir-meta');
    const res = await runPlanInUserns(USER, work, {
      env: { ATOMFS_TEST_RUN_DIR: null },
      steps: [
        { mntns: true },
        { atomfs: ['mount', '--allow-missing-verity', `--metadir=${meta}`, ref(test1.noVerity.dir), m] },
        { exists: join(m, '1.README.md') },
        { sh: `cat ${configPath(m, meta)}` },
        { atomfs: ['umount', `--metadir=${meta}`, m] },
        { readdir: m },
      ],
    });
    const ns = (res[0] as { mntns: string }).mntns;
    assertOk(sh(res[1]), 'mount --metadir');
    assert.deepEqual(res[2], { exists: true });
    const cfg = sh(res[3]);
    assertOk(cfg, 'config.json under $META_DIR/meta/<mntns>/<target>/ while mounted');
    assert.equal((JSON.parse(cfg.stdout) as { MetadataDir: string }).MetadataDir, meta);
    assertOk(sh(res[4]), 'umount --metadir');
    assert.deepEqual(res[5], { readdir: [] });
    assert.equal(nsDirState(meta, ns), 'empty', '$META_DIR/meta/<mntns>/ exists and is empty');
    assert.equal(existsSync(`/run/atomfs/meta/${ns}`), false, 'the default runtime dir was not used');
    assert.deepEqual(leftoversUnder(work), []);
  });
});
