/**
 * Issue 4, as host root: `atomfs mount` of a 3-layer stacker image equals the kernel's own
 * read-only overlayfs of the same layers (both our paths: kernel loop+overlay, and the FUSE
 * server with userspace dm-verity); failed mounts roll back completely; the error words.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import {
  compareSnapshots,
  listLoopDevices,
  metadirName,
  processCleanup,
  readMountinfo,
  run,
  snapshotDir,
  withLoopMount,
  type Snapshot,
} from './lib/index.js';
import { atomfs, atomfsOk, cleanAtomfsAtEnd, leftoversUnder, loopsUnder, mntnsId, nsDirState, serversUnder, showResult, type CliResult, resetAfterTest } from './atomfs-cli.js';
import { assertRoundsApplied, buildThreeLayerImage, kernelMergedSnapshot, makeSharedTempDir, patchFile, writeImage, type LayerFile } from './oci-images.js';

let work = '';
let oci = '';
let runDir = '';
/** Bottom-first. */
let verityLayers: LayerFile[] = [];
let plainLayers: LayerFile[] = [];
let kernelView: Snapshot;

before(async () => {
  work = makeSharedTempDir('amount', processCleanup);
  cleanAtomfsAtEnd(processCleanup, work);
  runDir = join(work, 'run');
  ({ oci, verityLayers, plainLayers } = await buildThreeLayerImage(work));
  kernelView = await kernelMergedSnapshot(verityLayers.map((l) => l.file));
  assert.deepEqual(assertRoundsApplied(kernelView), [], 'the kernel merged view shows every change of the rounds');
  // The comparison is not vacuous: the bottom layer alone differs from the merged view in many ways.
  const bottomOnly = await withLoopMount(verityLayers[0]!.file, (mp) => snapshotDir(mp));
  assert.ok(kernelView.size > 150, `merged view has ${kernelView.size} entries`);
  assert.ok(compareSnapshots(bottomOnly, kernelView).length > 20, 'the merged view differs from the bottom layer');
});
afterEach(() => resetAfterTest(work, [runDir]));
after(() => processCleanup.run());

function mountFstype(target: string): string | undefined {
  return readMountinfo().find((m) => m.mountpoint === target)?.fstype;
}

function freshTarget(name: string): string {
  const t = join(work, name);
  mkdirSync(t);
  return t;
}

describe('merged tree equals the kernel overlayfs of the same layers', () => {
  test('default backend as host root: kernel without root hashes, FUSE with them (no device-mapper here)', async () => {
    for (const [tag, extra, fstype] of [
      ['tri-noverity', ['--allow-missing-verity'], 'overlay'],
      ['tri', [], 'fuse.atomfs'],
    ] as const) {
      const mp = freshTarget(`mp-auto-${tag}`);
      await atomfsOk(['mount', ...extra, `${oci}:${tag}`, mp], { runDir });
      try {
        assert.equal(mountFstype(mp), fstype, tag);
      } finally {
        await atomfsOk(['umount', mp], { runDir });
      }
    }
    assert.deepEqual(leftoversUnder(work), []);
  });

  test('--backend kernel (image without root hashes, --allow-missing-verity)', async () => {
    const mp = freshTarget('mp-kernel');
    await atomfsOk(['mount', '--backend', 'kernel', '--allow-missing-verity', `${oci}:tri-noverity`, mp], { runDir });
    try {
      assert.equal(mountFstype(mp), 'overlay');
      const loops = listLoopDevices().filter((l) => l.backFile.startsWith(oci + '/'));
      assert.equal(loops.length, 3, 'one loop device per layer');
      const ours = await snapshotDir(mp);
      assert.deepEqual(compareSnapshots(kernelView, ours), []);
    } finally {
      await atomfsOk(['umount', mp], { runDir });
    }
    assert.deepEqual(leftoversUnder(work), []);
    assert.equal(nsDirState(runDir), 'empty');
  });

  test('--backend fuse (dm-verity checked in userspace)', async () => {
    const mp = freshTarget('mp-fuse');
    await atomfsOk(['mount', '--backend', 'fuse', `${oci}:tri`, mp], { runDir });
    try {
      assert.equal(mountFstype(mp), 'fuse.atomfs');
      assert.equal(serversUnder(work).length, 1, 'one server for the whole image');
      const ours = await snapshotDir(mp);
      assert.deepEqual(compareSnapshots(kernelView, ours), []);
    } finally {
      await atomfsOk(['umount', mp], { runDir });
    }
    assert.deepEqual(leftoversUnder(work), []);
    assert.equal(nsDirState(runDir), 'empty');
  });
});

// ---- failure rollback ------------------------------------------------------------------------

function metadirOf(target: string): string {
  return join(runDir, 'meta', mntnsId(), metadirName(target));
}

/** A failed mount: exit 1, ONE line `Error: ...` mentioning `mention`, and nothing left anywhere. */
function assertCleanFailure(r: CliResult, target: string, mention: RegExp | string): void {
  assert.equal(r.status, 1, showResult(r));
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one error line:\n${r.stderr}`);
  assert.match(lines[0]!, /^Error: /);
  if (typeof mention === 'string') assert.ok(lines[0]!.includes(mention), `error names ${mention}: ${lines[0]}`);
  else assert.match(lines[0]!, mention);
  assert.deepEqual(leftoversUnder(work), [], 'no mounts, loop devices or servers left');
  assert.deepEqual(readdirSync(target), [], 'target still empty');
  assert.equal(existsSync(metadirOf(target)), false, 'metadir removed');
  assert.equal(nsDirState(runDir), 'empty', 'meta/<mntns>/ exists and is empty');
}

/** A copy of `src` with `bytes` written at `offset`. */
function corruptCopy(src: string, dst: string, offset: number, bytes: Buffer): string {
  copyFileSync(src, dst);
  patchFile(dst, offset, bytes);
  return dst;
}

const digestOf = (layout: string, file: string): string => {
  // writeLayout stores blobs by sha256; find the one whose content equals `file`.
  const want = readFileSync(file);
  for (const name of readdirSync(join(layout, 'blobs/sha256'))) {
    const p = join(layout, 'blobs/sha256', name);
    if (statSync(p).size === want.length && readFileSync(p).equals(want)) return `sha256:${name}`;
  }
  throw new Error(`no blob for ${file}`);
};

describe('a failing lower layer rolls back everything', () => {
  // Bottom-first index 1 = the SECOND layer mounted (layers are mounted top first); 0 = the last.
  for (const bad of [1, 0]) {
    test(`--backend kernel: layer ${bad === 1 ? 'two (middle)' : 'three (bottom)'} has a broken squashfs superblock`, async () => {
      const layers = [...plainLayers];
      const broken = corruptCopy(plainLayers[bad]!.file, join(work, `sq/bad-super-${bad}.sqfs`), 0, Buffer.from('XXXX'));
      layers[bad] = { ...plainLayers[bad]!, file: broken };
      await writeImage(oci, `bad-plain-${bad}`, layers, { noRootHash: true });
      const mp = freshTarget(`mp-bad-plain-${bad}`);
      const r = await atomfs(['mount', '--backend', 'kernel', '--allow-missing-verity', `${oci}:bad-plain-${bad}`, mp], { runDir });
      assertCleanFailure(r, mp, digestOf(oci, broken));
      // The reason, not util-linux's "dmesg(1) may have more information" hint.
      assert.match(r.stderr, /bad superblock|wrong fs type/);
    });
  }

  test('--backend fuse: layer two has the wrong root hash', async () => {
    await writeImage(oci, 'bad-root-hash', verityLayers, { rootHashOverride: new Map([[1, verityLayers[0]!.rootHash!]]) });
    const mp = freshTarget('mp-bad-root-hash');
    const r = await atomfs(['mount', '--backend', 'fuse', `${oci}:bad-root-hash`, mp], { runDir });
    assertCleanFailure(r, mp, digestOf(oci, verityLayers[1]!.file));
    assert.match(r.stderr, /root hash mismatch/);
  });

  test('--backend fuse: layer two has a broken squashfs superblock (caught by verity)', async () => {
    const layers = [...verityLayers];
    const broken = corruptCopy(verityLayers[1]!.file, join(work, 'sq/bad-super-verity.sqfs'), 0, Buffer.from('XXXX'));
    layers[1] = { ...verityLayers[1]!, file: broken };
    await writeImage(oci, 'bad-verity-super', layers);
    const mp = freshTarget('mp-bad-verity-super');
    const r = await atomfs(['mount', '--backend', 'fuse', `${oci}:bad-verity-super`, mp], { runDir });
    assertCleanFailure(r, mp, digestOf(oci, broken));
  });

  // The writable overlay is the last step: its failure must take down the layer mounts / server.
  for (const [backend, tag, extra] of [
    ['kernel', 'tri-noverity', ['--allow-missing-verity']],
    ['fuse', 'tri', []],
  ] as const) {
    test(`--backend ${backend}: a --persist dir that cannot be created fails after the layers are up`, async () => {
      const notADir = join(work, `plain-file-${backend}`);
      writeFileSync(notADir, 'not a directory\n');
      const mp = freshTarget(`mp-bad-persist-${backend}`);
      const r = await atomfs(['mount', '--backend', backend, ...extra, '--persist', join(notADir, 'p'), `${oci}:${tag}`, mp], { runDir });
      assertCleanFailure(r, mp, /not a directory/);
    });
  }
});

describe('mount lifecycle edge cases', () => {
  for (const [backend, tag, extra] of [
    ['kernel', 'tri-noverity', ['--allow-missing-verity']],
    ['fuse', 'tri', []],
  ] as const) {
    test(`--backend ${backend}: a second mount at a live target is refused and the first keeps working`, async () => {
      const mp = freshTarget(`mp-twice-${backend}`);
      await atomfsOk(['mount', '--backend', backend, ...extra, `${oci}:${tag}`, mp], { runDir });
      try {
        const r = await atomfs(['mount', '--backend', backend, ...extra, `${oci}:${tag}`, mp], { runDir });
        assert.equal(r.status, 1, showResult(r));
        assert.match(r.stderr, /^Error: .*is already mounted by atomfs.*atomfs umount/);
        assert.equal(readFileSync(join(mp, 'many/one'), 'utf8'), 'back\n', 'first mount still serves');
        assert.ok(existsSync(join(metadirOf(mp), 'config.json')), 'first mount keeps its metadata');
      } finally {
        await atomfsOk(['umount', mp], { runDir });
      }
      assert.deepEqual(leftoversUnder(work), []);
      assert.equal(nsDirState(runDir), 'empty');
    });

    test(`--backend ${backend}: a stale metadir (target unmounted with plain umount -l) does not block a new mount`, async () => {
      const mp = freshTarget(`mp-stale-${backend}`);
      await atomfsOk(['mount', '--backend', backend, ...extra, `${oci}:${tag}`, mp], { runDir });
      await run(['umount', '-l', mp]);
      assert.ok(existsSync(join(metadirOf(mp), 'config.json')), 'plain umount left the metadir');
      await atomfsOk(['mount', '--backend', backend, ...extra, `${oci}:${tag}`, mp], { runDir });
      try {
        assert.equal(readFileSync(join(mp, 'xattrs/again'), 'utf8'), 'again\n');
        if (backend === 'kernel') assert.equal(loopsUnder(oci).length, 3, 'the stale layer mounts were undone, only the new loops exist');
        else assert.equal(serversUnder(work).length, 1, 'one server');
      } finally {
        await atomfsOk(['umount', mp], { runDir });
      }
      assert.deepEqual(leftoversUnder(work), []);
      assert.equal(nsDirState(runDir), 'empty');
    });
  }

  for (const writeable of [false, true]) {
    test(`SIGKILLed FUSE server${writeable ? ' under a writable overlay' : ''}: atomfs umount still cleans everything`, async () => {
      const mp = freshTarget(`mp-killed-${writeable ? 'rw' : 'ro'}`);
      await atomfsOk(['mount', '--backend', 'fuse', ...(writeable ? ['--writeable'] : []), `${oci}:tri`, mp], { runDir });
      const record = JSON.parse(readFileSync(join(metadirOf(mp), 'config.json'), 'utf8')) as { atomfs: { serverPid: number } };
      const pid = record.atomfs.serverPid;
      assert.deepEqual(serversUnder(work), [pid], 'config.json names the server');
      process.kill(pid, 'SIGKILL');
      const end = Date.now() + 5000;
      while (serversUnder(work).length > 0 && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
      assert.throws(() => readdirSync(mp), /ENOTCONN|ECONNABORTED/, 'the mount is dead');
      await atomfsOk(['umount', mp], { runDir });
      assert.deepEqual(leftoversUnder(work), []);
      assert.deepEqual(readdirSync(mp), []);
      assert.equal(nsDirState(runDir), 'empty');
    });
  }
});

describe('error words', () => {
  const cases: Array<[string, (mp: string) => string[], RegExp]> = [
    ['no colon in the image reference', (mp) => ['mount', oci, mp], /^Incorrect Usage: .*no ":"/],
    ['one positional argument', () => ['mount', `${oci}:tri`], /^Incorrect Usage: mount takes OCIDIR:TAG TARGET \(1 argument given\)$/m],
    ['missing OCI directory', (mp) => ['mount', `${work}/no-such-oci:tri`, mp], /^Error: oci directory \S+no-such-oci does not exist/],
    ['unknown tag', (mp) => ['mount', `${oci}:no-such-tag`, mp], /^Error: bad descriptor no-such-tag: not found/],
    ['empty --persist=', (mp) => ['mount', '--persist=', `${oci}:tri`, mp], /^Error: --persist requires an argument$/m],
    ['missing target', () => ['mount', `${oci}:tri`, `${work}/no-such-target`], /^Error: target \S+ does not exist/],
    ['unknown flag', (mp) => ['mount', '--bogus', `${oci}:tri`, mp], /^Incorrect Usage: .*bogus/],
    ['umount of something that is not an atomfs mount', (mp) => ['umount', mp], /^Error: \S+ is not an atomfs mountpoint$/m],
  ];
  for (const [what, argv, want] of cases) {
    test(what, async () => {
      const mp = freshTarget(`mp-err-${what.replace(/\W+/g, '-')}`);
      const r = await atomfs(argv(mp), { runDir });
      // Usage errors exit 2, other failures 1.
      assert.equal(r.status, /Incorrect Usage/.test(want.source) ? 2 : 1, showResult(r));
      assert.match(r.stderr, want);
      assert.deepEqual(leftoversUnder(work), []);
      assert.deepEqual(readdirSync(mp), []);
    });
  }
});
