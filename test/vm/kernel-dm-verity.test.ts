/**
 * The kernel path of `atomfs mount` as most users meet it: host root on a kernel with
 * device-mapper, where each verity layer is opened with `veritysetup open` as the shared device
 * `<layer hex>-verity` and mounted by the kernel's squashfs under its overlayfs.
 *
 * This project's machines have no device-mapper: test/vm/run.sh runs this file as root in a qemu
 * guest with Debian's kernel (dm-verity as a module). Elsewhere it skips — except in that guest
 * (ATOMFS_VM_GUEST=1), where a missing device-mapper is a failure, not a skip.
 *
 * The truth each scenario is checked against is the kernel's own: its overlayfs over its
 * loop-mounted squashfs of the same layers, `veritysetup verify`, `dmsetup`, `losetup`, and
 * mountinfo; the images are made by mksquashfs + `veritysetup format` (test/oci-images.ts).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test, type TestContext } from 'node:test';
import { atomfs, ATOMFS_BIN, forceCleanUnder, loopsUnder, mountsUnder, nsDirState, showResult, type CliResult } from '../atomfs-cli.js';
import { isWhiteout, kernelMergedSnapshot, overlayRounds, packLayer, ROUND1, ROUND2, writeImage, type LayerFile } from '../oci-images.js';
import { readMountinfo } from '@atomfs/fuse';
import { writeLayout } from '@atomfs/oci';
import { packErofs } from '../erofs-images.js';
import {
  compareSnapshots,
  generateTree,
  makeContent,
  makeTempDir,
  processCleanup,
  run,
  runSync,
  sleepSync,
  snapshotDir,
  useCleanup,
  withLoopMount,
  type CleanupStack,
  type Snapshot,
} from '../lib/index.js';

const IN_GUEST = process.env.ATOMFS_VM_GUEST === '1';
const BLOCK = 4096;
/** random.bin: 1 MiB of random bytes (stored raw), damaged in its 4 KiB piece FLIP_PIECE. */
const RANDOM_BLOCKS = 256;
const FLIP_PIECE = 150;

interface HostApi {
  kernelDmVerityAvailable(): { ok: boolean; why: string };
}
const host = (await import(new URL('../../../packages/atomfs/dist/src/host.js', import.meta.url).href)) as HostApi;
const dm = host.kernelDmVerityAvailable();

/** Skip without device-mapper, fail in the VM guest (where the scenarios must run). */
function needDm(t: TestContext): boolean {
  if (dm.ok) return true;
  if (IN_GUEST) assert.fail(`in the VM guest, yet kernel dm-verity is unusable: ${dm.why}`);
  t.skip(`kernel dm-verity unavailable: ${dm.why} (test/vm/run.sh runs this in a VM)`);
  return false;
}

// ---- device-mapper and loop state, as the kernel reports it ------------------------------------

/** Names of all dm devices (`dmsetup ls`). */
function dmDevices(): string[] {
  const r = runSync(['dmsetup', 'ls'], { allowFail: true });
  const out = r.stdout.toString('utf8');
  if (r.status !== 0 || /No devices found/.test(out)) return [];
  return out
    .split('\n')
    .map((l) => l.split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

function dmTable(name: string): string {
  return runSync(['dmsetup', 'table', name]).stdout.toString('utf8').trim();
}

function dmStatus(name: string): string {
  return runSync(['dmsetup', 'status', name]).stdout.toString('utf8').trim();
}

/** The `<hex>-verity` devices among `hexes` that exist. */
function ourDevices(hexes: readonly string[]): string[] {
  const names = new Set(dmDevices());
  return hexes.map((h) => `${h}-verity`).filter((n) => names.has(n));
}

/** Everything a mount under `dir` of layers `hexes` could leave: mounts, loop devices, dm devices. */
function leftovers(dir: string, hexes: readonly string[], graceMs = 5000): string[] {
  const end = Date.now() + graceMs;
  for (;;) {
    // Loop devices of veritysetup are backed by the layout's blobs, in the fixture dir.
    const loops = [...loopsUnder(dir), ...(fx !== undefined ? loopsUnder(fx.dir) : [])];
    const found = [...mountsUnder(dir).map((m) => `mount ${m}`), ...loops.map((l) => `loop ${l}`), ...ourDevices(hexes).map((d) => `dm ${d}`)];
    // A loop device with autoclear goes just after its last user closes it.
    if (found.length === 0 || Date.now() >= end) return found;
    sleepSync(100);
  }
}

/** Close dm devices of `hexes` and loop devices under `dir` (test cleanup, also after a failure). */
function forceCleanDm(dir: string, hexes: readonly string[]): void {
  forceCleanUnder(dir);
  for (const d of ourDevices(hexes)) runSync(['dmsetup', 'remove', '--retry', d], { allowFail: true });
  forceCleanUnder(dir);
}

// ---- the images ----------------------------------------------------------------------------------

function sha256Hex(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** The one `Error:` line of a failed command run with --debug (its other lines are "atomfs: ..."). */
function oneLineError(r: CliResult): string {
  assert.equal(r.status, 1, `exit status 1: ${showResult(r)}`);
  const lines = r.stderr.trimEnd().split('\n');
  const errors = lines.filter((l) => !l.startsWith('atomfs: '));
  assert.equal(errors.length, 1, `one line of error: ${r.stderr}`);
  assert.match(errors[0]!, /^Error: /);
  return errors[0]!;
}

/** One bit of `file` at `offset` flipped. */
function flipBit(file: string, offset: number, bit = 0): void {
  const b = readFileSync(file);
  b[offset] = b[offset]! ^ (1 << bit);
  writeFileSync(file, b);
}

interface Fixture {
  dir: string;
  /** OCI layout: `tri` (3 layers), `share` (tri's bottom layer + `extra`), `flip` (bottom + damaged data block), `treeflip` (damaged hash tree), `wrongroot`. */
  oci: string;
  triHex: string[];
  triFiles: LayerFile[];
  truth: Snapshot;
  shareHex: string[];
  shareTruth: Snapshot;
  /** The layer with the random file, undamaged. */
  victim: LayerFile;
  victimHex: string;
  /** Its data-block-flipped copy: blob hex and the file the flip lands in. */
  flippedHex: string;
  flippedBlob: string;
  treeFlippedHex: string;
  /** The victim with a flip in data block 8, which udev's probe of a new device reads. */
  headFlippedHex: string;
  /** The root hash the `wrongroot` manifest gives the victim layer. */
  wrongRoot: string;
  randomData: Buffer;
  allHex: string[];
}

let fx: Fixture | undefined;

/**
 * test/oci-images.ts's 3-layer image (generateTree + ROUND1 + ROUND2 through the kernel's
 * overlayfs), minus the bottom layer's char 0:0: the 6.1 kernel's overlayfs lists it in a
 * directory only one layer has but lookup treats it as a whiteout (ENOENT), so no snapshot of
 * either the truth or our mount could be taken (the suites on the host's newer kernel keep it).
 */
async function buildThreeLayers(work: string): Promise<{ oci: string; verityLayers: LayerFile[]; plainLayers: LayerFile[] }> {
  const base = join(work, 'base');
  await generateTree(base, { medium: false });
  rmSync(join(base, 'special/char-0-0'));
  const layersDir = join(work, 'layers');
  mkdirSync(layersDir);
  const dirs = await overlayRounds(layersDir, base, [ROUND1, ROUND2]);
  assert.ok(isWhiteout(join(dirs[1]!, 'files/r7')) && isWhiteout(join(dirs[2]!, 'files/r333')), 'the rounds made kernel whiteouts');
  const sq = join(work, 'sq');
  mkdirSync(sq);
  const verityLayers: LayerFile[] = [];
  const plainLayers: LayerFile[] = [];
  for (const [i, d] of dirs.entries()) {
    verityLayers.push(await packLayer(d, join(sq, `L${i + 1}.verity.sqfs`)));
    plainLayers.push(await packLayer(d, join(sq, `L${i + 1}.sqfs`), { verity: false }));
  }
  const oci = join(work, 'oci');
  await writeImage(oci, 'tri', verityLayers);
  return { oci, verityLayers, plainLayers };
}

async function buildFixture(stack: CleanupStack): Promise<Fixture> {
  const dir = makeTempDir('vmdm', stack);
  stack.add('dm devices and loops of the fixture', () => forceCleanDm(dir, fx?.allHex ?? []));
  const tri = await buildThreeLayers(dir);
  const oci = tri.oci;
  const triFiles = tri.verityLayers;
  const triHex = triFiles.map((l) => sha256Hex(l.file));
  const truth = await kernelMergedSnapshot(tri.plainLayers.map((l) => l.file));

  // A layer of its own for the sharing image, and one whose data blocks are raw random bytes
  // (incompressible: mksquashfs stores them as they are), so a chosen block can be found and hit.
  const extraDir = join(dir, 'extra');
  mkdirSync(join(extraDir, 'etc'), { recursive: true });
  writeFileSync(join(extraDir, 'etc/extra.conf'), 'only in the sharing image\n');
  const extra = await packLayer(extraDir, join(dir, 'extra.sqfs'));
  const extraPlain = await packLayer(extraDir, join(dir, 'extra.plain.sqfs'), { verity: false });
  await writeImage(oci, 'share', [triFiles[0]!, extra]);
  const shareTruth = await kernelMergedSnapshot([tri.plainLayers[0]!.file, extraPlain.file]);

  const victimDir = join(dir, 'victim');
  mkdirSync(victimDir);
  const randomData = makeContent('random', RANDOM_BLOCKS * BLOCK, 0x0d5e7a);
  writeFileSync(join(victimDir, 'random.bin'), randomData);
  writeFileSync(join(victimDir, 'keep.txt'), 'this file is not damaged\n');
  const victim = await packLayer(victimDir, join(dir, 'victim.sqfs'));

  // A bit in the middle of one 4 KiB piece of random.bin, found in the image. Not near the
  // device's start or end: udev's blkid reads those when the dm device appears, so damage there
  // makes the device report corruption before the mount, which is then refused (as Go atomfs's
  // status check does). This case is about damage found on read.
  const flipped = join(dir, 'victim.flipped.sqfs');
  copyFileSync(victim.file, flipped);
  const image = readFileSync(flipped);
  const piece = randomData.subarray(FLIP_PIECE * BLOCK, (FLIP_PIECE + 1) * BLOCK);
  const at = image.indexOf(piece);
  assert.ok(at > 0 && image.indexOf(piece, at + 1) === -1 && at + BLOCK <= victim.squashfsBytes, `random.bin's piece ${FLIP_PIECE} is stored raw once in the image (at ${at})`);
  flipBit(flipped, at + 2000, 3);

  // A bit in the hash tree: the block after the verity superblock (at the hash offset).
  const treeFlipped = join(dir, 'victim.treeflip.sqfs');
  copyFileSync(victim.file, treeFlipped);
  flipBit(treeFlipped, victim.squashfsBytes + BLOCK + 10, 5);

  // A bit in data block 8 (random.bin too): udev's blkid reads the device's first blocks (1, 2,
  // 8 and 16 measured; 100 not) when veritysetup makes it, so dm-verity reports corruption at once.
  const headFlipped = join(dir, 'victim.headflip.sqfs');
  copyFileSync(victim.file, headFlipped);
  flipBit(headFlipped, 8 * BLOCK + 100, 1);

  const flippedLayer = { ...victim, file: flipped };
  const treeLayer = { ...victim, file: treeFlipped };
  await writeImage(oci, 'flip', [triFiles[0]!, flippedLayer]);
  await writeImage(oci, 'treeflip', [triFiles[0]!, treeLayer]);
  await writeImage(oci, 'headflip', [triFiles[0]!, { ...victim, file: headFlipped }]);
  const wrong = victim.rootHash!.slice(0, 20) + (victim.rootHash![20] === 'a' ? 'b' : 'a') + victim.rootHash!.slice(21);
  await writeImage(oci, 'wrongroot', [triFiles[0]!, victim], { rootHashOverride: new Map([[1, wrong]]) });
  const victimHex = sha256Hex(victim.file);
  const flippedHex = sha256Hex(flipped);
  const treeFlippedHex = sha256Hex(treeFlipped);
  const headFlippedHex = sha256Hex(headFlipped);
  const shareHex = [triHex[0]!, sha256Hex(extra.file)];
  return {
    dir,
    oci,
    triHex,
    triFiles,
    truth,
    shareHex,
    shareTruth,
    victim,
    victimHex,
    flippedHex,
    flippedBlob: join(oci, 'blobs/sha256', flippedHex),
    treeFlippedHex,
    headFlippedHex,
    wrongRoot: wrong,
    randomData,
    allHex: [...new Set([...triHex, ...shareHex, victimHex, flippedHex, treeFlippedHex, headFlippedHex])],
  };
}

/** A fresh case dir with a mountpoint and a run dir; its mounts and devices go when the test ends. */
function caseDir(t: TestContext, name: string): { dir: string; mp: string; runDir: string; stack: CleanupStack } {
  const stack = useCleanup(t);
  const dir = makeTempDir(`vmdm-${name}`, stack);
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  const runDir = join(dir, 'run');
  stack.add(`unmount ${mp} and close its devices`, () => {
    if (readMountinfo().some((m) => m.mountpoint === mp)) runSync([process.execPath, ATOMFS_BIN, 'umount', '--metadir', runDir, mp], { allowFail: true, timeoutMs: 60_000 });
    forceCleanDm(dir, fx?.allHex ?? []);
    // Devices of the shared fixture layers may be held by a mount of this case only.
    for (const d of ourDevices(fx?.allHex ?? [])) runSync(['dmsetup', 'remove', '--retry', d], { allowFail: true });
  });
  return { dir, mp, runDir, stack };
}

const cli = (args: string[], runDir: string) => atomfs(['--debug', ...args.slice(0, 1), '--metadir', runDir, ...args.slice(1)], { runDir: null, timeoutMs: 180_000 });

function mountAt(mp: string) {
  return readMountinfo().find((m) => m.mountpoint === mp);
}

/** Sources of the squashfs mounts under `dir` (the layer mounts of an atomfs kernel mount). */
function layerSources(dir: string): string[] {
  return readMountinfo()
    .filter((m) => m.fstype === 'squashfs' && m.mountpoint.startsWith(dir + '/'))
    .map((m) => m.source)
    .sort();
}

/** fstype and source of the layer mounts under `dir`, sorted. */
function layerMounts(dir: string): { fstype: string; source: string }[] {
  return readMountinfo()
    .filter((m) => (m.fstype === 'squashfs' || m.fstype === 'erofs') && m.mountpoint.startsWith(dir + '/'))
    .map((m) => ({ fstype: m.fstype, source: m.source }))
    .sort((a, b) => (`${a.fstype} ${a.source}` < `${b.fstype} ${b.source}` ? -1 : 1));
}

async function umountClean(mp: string, runDir: string, dir: string, hexes: readonly string[]): Promise<void> {
  const u = await cli(['umount', mp], runDir);
  assert.equal(u.status, 0, showResult(u));
  assert.equal(mountAt(mp), undefined, 'the target is no longer a mountpoint');
  assert.deepEqual(leftovers(dir, hexes), [], 'no mount, loop or dm device left');
  const ns = nsDirState(runDir);
  assert.ok(ns === 'missing' || ns === 'empty', `no metadata left: ${JSON.stringify(ns)}`);
}

/** Read every regular file of `files` under `mp`: paths that fail with EIO. */
function eioFiles(mp: string, files: readonly string[]): string[] {
  const bad: string[] = [];
  for (const f of files) {
    try {
      readFileSync(join(mp, f));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EIO') bad.push(f);
      else throw err;
    }
  }
  return bad;
}

// ---- scenarios ---------------------------------------------------------------------------------

describe('kernel dm-verity path (host root with device-mapper)', { concurrency: 1 }, () => {
  before(async () => {
    if (!dm.ok) return;
    const t0 = Date.now();
    fx = await buildFixture(processCleanup);
    process.stderr.write(`kernel-dm-verity: fixture built in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  });

  test('a 3-layer verity image: one <hex>-verity device per layer, the kernel overlay of the layers, verify OK per layer', async (t) => {
    if (!needDm(t)) return;
    const f = fx!;
    const { dir, mp, runDir } = caseDir(t, 'tri');
    assert.deepEqual(ourDevices(f.allHex), [], 'no device of the fixture before');
    const m = await cli(['mount', `${f.oci}:tri`, mp], runDir);
    assert.equal(m.status, 0, showResult(m));
    assert.match(m.stderr, /backend kernel/, 'auto picks the kernel path');
    assert.equal(mountAt(mp)?.fstype, 'overlay');
    assert.deepEqual(ourDevices(f.triHex).sort(), f.triHex.map((h) => `${h}-verity`).sort(), 'one dm device per layer');
    for (const [i, h] of f.triHex.entries()) {
      // The kernel's own table: verity of the blob, the root hash of the manifest.
      const table = dmTable(`${h}-verity`);
      assert.match(table, / verity 1 /, table);
      assert.ok(table.includes(f.triFiles[i]!.rootHash!), `root hash of layer ${i + 1} in the table: ${table}`);
      assert.ok(table.includes(` ${f.triFiles[i]!.squashfsBytes / BLOCK} `), `data blocks = squashfs size / 4096: ${table}`);
    }
    assert.deepEqual(layerSources(dir), f.triHex.map((h) => `/dev/mapper/${h}-verity`).sort(), 'every layer is mounted from its dm device');
    const ours = await snapshotDir(mp);
    assert.deepEqual(compareSnapshots(f.truth, ours, { ignore: ['dirNlink'] }), [], 'content equals the kernel overlay of the loop-mounted layers');
    for (const h of f.triHex) assert.match(dmStatus(`${h}-verity`), / verity V$/, 'the kernel verified every block read');

    const v = await cli(['verify', mp], runDir);
    assert.equal(v.status, 0, showResult(v));
    assert.deepEqual(v.stdout.trim().split('\n').sort(), f.triHex.map((h) => `/dev/mapper/${h}-verity: OK`).sort());
    await umountClean(mp, runDir, dir, f.triHex);

    // --backend fuse on the same kernel: no dm device, verified in userspace, the same view.
    const mf = await cli(['mount', '--backend', 'fuse', `${f.oci}:tri`, mp], runDir);
    assert.equal(mf.status, 0, showResult(mf));
    assert.equal(mountAt(mp)?.fstype, 'fuse.atomfs');
    assert.deepEqual(ourDevices(f.allHex), [], 'the FUSE path opens no dm device');
    assert.deepEqual(compareSnapshots(f.truth, await snapshotDir(mp), { ignore: ['dirNlink'] }), [], 'the FUSE view equals the kernel overlay too');
    const vf = await cli(['verify', mp], runDir);
    assert.equal(vf.status, 0, showResult(vf));
    assert.deepEqual(vf.stdout.trim().split('\n').sort(), f.triHex.map((h) => `sha256:${h}: OK`).sort());
    await umountClean(mp, runDir, dir, f.triHex);
  });

  test('a flipped bit in a data block: EIO for that file only, verify says CORRUPTION FOUND; the FUSE path agrees', async (t) => {
    if (!needDm(t)) return;
    const f = fx!;
    const { dir, mp, runDir } = caseDir(t, 'flip');
    // The kernel without verity reads the damaged bytes: the flip is in random.bin's data.
    const plainView = await withLoopMount(f.flippedBlob, (p) => ({ random: readFileSync(join(p, 'random.bin')), keep: readFileSync(join(p, 'keep.txt'), 'utf8') }));
    assert.notDeepEqual(plainView.random, f.randomData, 'the kernel squashfs alone serves changed bytes');
    assert.equal(plainView.random.length, f.randomData.length);
    const vs = await run(['veritysetup', 'verify', f.flippedBlob, f.flippedBlob, f.victim.rootHash!, `--hash-offset=${f.victim.squashfsBytes}`], { allowFail: true });
    assert.notEqual(vs.status, 0, 'veritysetup verify finds the damage');

    const m = await cli(['mount', `${f.oci}:flip`, mp], runDir);
    assert.equal(m.status, 0, `a damaged data block does not stop the mount: ${showResult(m)}`);
    assert.equal(mountAt(mp)?.fstype, 'overlay');
    assert.equal(readFileSync(join(mp, 'keep.txt'), 'utf8'), plainView.keep, 'undamaged files read');
    assert.deepEqual(eioFiles(mp, ['random.bin', 'keep.txt']), ['random.bin'], 'random.bin fails with EIO');
    // The file's other squashfs blocks (128 KiB each) read right; the damaged one never does.
    const fd = openSync(join(mp, 'random.bin'), 'r');
    const sqBlock = 128 * 1024;
    const damaged = Math.floor((FLIP_PIECE * BLOCK) / sqBlock);
    for (let b = 0; b < (RANDOM_BLOCKS * BLOCK) / sqBlock; b++) {
      const buf = Buffer.alloc(sqBlock);
      if (b === damaged) {
        assert.throws(() => readSync(fd, buf, 0, sqBlock, b * sqBlock), { code: 'EIO' }, `squashfs block ${b} holds the flip`);
        continue;
      }
      assert.equal(readSync(fd, buf, 0, sqBlock, b * sqBlock), sqBlock);
      assert.ok(buf.equals(f.randomData.subarray(b * sqBlock, (b + 1) * sqBlock)), `squashfs block ${b} reads the original bytes`);
    }
    closeSync(fd);
    assert.match(dmStatus(`${f.flippedHex}-verity`), / verity C$/, 'dm-verity saw the corruption');
    const v = await cli(['verify', mp], runDir);
    assert.equal(v.status, 1, showResult(v));
    assert.match(v.stdout, new RegExp(`^/dev/mapper/${f.flippedHex}-verity: CORRUPTION FOUND$`, 'm'));
    assert.match(v.stdout, new RegExp(`^/dev/mapper/${f.triHex[0]}-verity: OK$`, 'm'));
    await umountClean(mp, runDir, dir, [f.triHex[0]!, f.flippedHex]);

    // The same image through the FUSE server, which verifies in userspace: the same verdicts.
    const mf = await cli(['mount', '--backend', 'fuse', `${f.oci}:flip`, mp], runDir);
    assert.equal(mf.status, 0, showResult(mf));
    assert.equal(mountAt(mp)?.fstype, 'fuse.atomfs');
    assert.deepEqual(ourDevices(f.allHex), [], 'the FUSE path opens no dm device');
    assert.equal(readFileSync(join(mp, 'keep.txt'), 'utf8'), plainView.keep);
    assert.deepEqual(eioFiles(mp, ['random.bin', 'keep.txt']), ['random.bin'], 'the FUSE path fails the same file');
    const vf = await cli(['verify', mp], runDir);
    assert.equal(vf.status, 1, showResult(vf));
    assert.match(vf.stdout, new RegExp(`^sha256:${f.flippedHex}: CORRUPTION FOUND`, 'm'));
    assert.match(vf.stdout, new RegExp(`^sha256:${f.triHex[0]}: OK`, 'm'));
    await umountClean(mp, runDir, dir, [f.triHex[0]!, f.flippedHex]);
  });

  const refusals = {
    treeflip: 'a flipped bit in the hash tree',
    wrongroot: 'a wrong root hash in the manifest',
    headflip: 'a flipped bit in a data block udev reads when the device appears',
  } as const;
  for (const kind of ['treeflip', 'wrongroot', 'headflip'] as const) {
    const what = refusals[kind];
    test(`${what}: mount refused with one line naming the layer, nothing left behind`, async (t) => {
      if (!needDm(t)) return;
      const f = fx!;
      const { dir, mp, runDir } = caseDir(t, kind);
      const hex = { treeflip: f.treeFlippedHex, wrongroot: f.victimHex, headflip: f.headFlippedHex }[kind];
      const blob = join(f.oci, 'blobs/sha256', hex);
      const root = kind === 'wrongroot' ? f.wrongRoot : f.victim.rootHash!;
      const vs = await run(['veritysetup', 'verify', blob, blob, root, `--hash-offset=${f.victim.squashfsBytes}`], { allowFail: true });
      assert.notEqual(vs.status, 0, 'veritysetup verify refuses it too');
      const m = await cli(['mount', `${f.oci}:${kind}`, mp], runDir);
      const err = oneLineError(m);
      assert.ok(err.includes(hex), `the error names the layer: ${err}`);
      // The tree's top and block 0 are checked before a device is made; the rest is the kernel's.
      assert.match(err, kind === 'headflip' ? /verity reports corruption on device/ : /root hash mismatch/);
      t.diagnostic(err);
      assert.equal(mountAt(mp), undefined, 'nothing mounted at the target');
      assert.deepEqual(leftovers(dir, [f.triHex[0]!, hex]), [], 'no mount, loop or dm device left');
      const ns = nsDirState(runDir);
      assert.ok(ns === 'missing' || ns === 'empty', `no metadata left: ${JSON.stringify(ns)}`);
    });
  }

  test('two images sharing a layer share its device; it closes with its last user', async (t) => {
    if (!needDm(t)) return;
    const f = fx!;
    const { dir, mp, runDir } = caseDir(t, 'share');
    const mp2 = join(dir, 'mp2');
    mkdirSync(mp2);
    const shared = `${f.triHex[0]}-verity`;
    assert.equal((await cli(['mount', `${f.oci}:tri`, mp], runDir)).status, 0);
    const m2 = await cli(['mount', `${f.oci}:share`, mp2], runDir);
    assert.equal(m2.status, 0, showResult(m2));
    assert.deepEqual(compareSnapshots(f.shareTruth, await snapshotDir(mp2), { ignore: ['dirNlink'] }), [], 'the second image equals its kernel overlay');
    assert.equal(dmDevices().filter((n) => n === shared).length, 1);
    const usedBy = readMountinfo().filter((m) => m.source === `/dev/mapper/${shared}`);
    assert.equal(usedBy.length, 2, `both images mount the shared device: ${usedBy.map((m) => m.mountpoint).join(', ')}`);
    assert.equal(new Set(usedBy.map((m) => `${m.major}:${m.minor}`)).size, 1, 'one block device');
    const all = [...new Set([...f.triHex, ...f.shareHex])];
    assert.deepEqual(ourDevices(all).sort(), all.map((h) => `${h}-verity`).sort(), 'one device per distinct layer');

    const u1 = await cli(['umount', mp], runDir);
    assert.equal(u1.status, 0, showResult(u1));
    assert.deepEqual(ourDevices(all).sort(), f.shareHex.map((h) => `${h}-verity`).sort(), 'the shared device stays with its other user; the others closed');
    assert.equal(readFileSync(join(mp2, 'etc/extra.conf'), 'utf8'), 'only in the sharing image\n');
    assert.deepEqual(compareSnapshots(f.shareTruth, await snapshotDir(mp2), { ignore: ['dirNlink'] }), [], 'still serving after the other umount');
    await umountClean(mp2, runDir, dir, all);
  });

  test('a foreign device with the layer\'s name and another root hash: "invalid root hash", the device is left alone', async (t) => {
    if (!needDm(t)) return;
    const f = fx!;
    const { dir, mp, runDir, stack } = caseDir(t, 'foreign');
    // Someone else's device under the middle layer's name: the bottom layer's blob and root hash.
    const name = `${f.triHex[1]}-verity`;
    const other = f.triFiles[0]!;
    const copy = join(dir, 'foreign.img');
    copyFileSync(other.file, copy);
    await run(['veritysetup', 'open', copy, name, copy, other.rootHash!, `--hash-offset=${other.squashfsBytes}`]);
    stack.add(`close ${name}`, () => void runSync(['veritysetup', 'close', name], { allowFail: true }));
    const m = await cli(['mount', `${f.oci}:tri`, mp], runDir);
    const err = oneLineError(m);
    assert.match(err, /invalid root hash/);
    assert.ok(err.includes(name), err);
    assert.equal(mountAt(mp), undefined);
    assert.deepEqual(dmDevices().filter((n) => n === name), [name], 'the foreign device is still there');
    assert.ok(dmTable(name).includes(other.rootHash!), 'and unchanged');
    assert.deepEqual(ourDevices([f.triHex[0]!, f.triHex[2]!]), [], 'the devices this mount opened are closed again');
    assert.deepEqual(mountsUnder(dir), []);
    await run(['veritysetup', 'close', name]);
    assert.deepEqual(leftovers(dir, f.triHex), []);
  });

  test('erofs layers on the dm path: a device per layer mounted by the kernel erofs, the kernel overlay of the layers; a flipped data bit reads as EIO', async (t) => {
    if (!needDm(t)) return;
    const f = fx!;
    const { dir, mp, runDir, stack } = caseDir(t, 'erofs');
    // Over the fixture's squashfs bottom layer: an lz4hc-compressed erofs layer and an
    // uncompressed one, whose random.bin is stored as it is (so a chosen block can be hit).
    const compressedDir = join(dir, 'compressed');
    mkdirSync(join(compressedDir, 'etc'), { recursive: true });
    writeFileSync(join(compressedDir, 'etc/erofs.conf'), 'from an erofs layer\n'.repeat(3000));
    const rawDir = join(dir, 'raw');
    mkdirSync(rawDir);
    writeFileSync(join(rawDir, 'random.bin'), f.randomData);
    writeFileSync(join(rawDir, 'keep.txt'), 'this file is not damaged\n');
    const compressed = await packErofs(compressedDir, join(dir, 'L2.erofs'), ['-zlz4hc']);
    const raw = await packErofs(rawDir, join(dir, 'L3.erofs'), []);
    const bottom = { file: f.triFiles[0]!.file, mediaType: 'application/vnd.stacker.image.layer.squashfs+zstd', rootHash: f.triFiles[0]!.rootHash! };
    const flipped = join(dir, 'L3.flipped.erofs');
    copyFileSync(raw.file, flipped);
    const image = readFileSync(flipped);
    const piece = f.randomData.subarray(FLIP_PIECE * BLOCK, (FLIP_PIECE + 1) * BLOCK);
    const at = image.indexOf(piece);
    assert.ok(at > 0 && at % BLOCK === 0 && image.indexOf(piece, at + 1) === -1 && at + BLOCK <= raw.imageBytes, `random.bin's piece ${FLIP_PIECE} is stored raw once, block-aligned (at ${at})`);
    flipBit(flipped, at + 2000, 3);
    const oci = join(dir, 'oci');
    const layer = (l: { file: string; mediaType: string; rootHash: string }) => ({ file: l.file, mediaType: l.mediaType, rootHash: l.rootHash });
    await writeLayout(oci, { tag: 'erofs', layers: [bottom, layer(compressed), layer(raw)] });
    await writeLayout(oci, { tag: 'flip', layers: [bottom, layer(compressed), { ...layer(raw), file: flipped }] });
    const hexes = [f.triHex[0]!, sha256Hex(compressed.file), sha256Hex(raw.file)];
    const flippedHex = sha256Hex(flipped);
    // Runs before caseDir's own clean-up (last added, first run): unmount first, as it does.
    stack.add('the mount and the dm devices of the erofs layers', () => {
      if (mountAt(mp) !== undefined) runSync([process.execPath, ATOMFS_BIN, 'umount', '--metadir', runDir, mp], { allowFail: true, timeoutMs: 60_000 });
      for (const d of ourDevices([...hexes.slice(1), flippedHex])) runSync(['dmsetup', 'remove', '--retry', d], { allowFail: true });
    });
    const truth = await kernelMergedSnapshot([f.triFiles[0]!.file, compressed.file, raw.file], ['squashfs', 'erofs', 'erofs']);

    const m = await cli(['mount', `${oci}:erofs`, mp], runDir);
    assert.equal(m.status, 0, showResult(m));
    assert.match(m.stderr, /backend kernel/, 'auto picks the kernel path for erofs layers too');
    assert.deepEqual(ourDevices(hexes).sort(), hexes.map((h) => `${h}-verity`).sort(), 'one dm device per layer');
    assert.deepEqual(
      layerMounts(dir).map((l) => `${l.fstype} ${l.source}`),
      [`squashfs /dev/mapper/${hexes[0]}-verity`, ...hexes.slice(1).map((h) => `erofs /dev/mapper/${h}-verity`)].sort(),
      'every layer is mounted by its own kernel filesystem from its dm device',
    );
    assert.deepEqual(compareSnapshots(truth, await snapshotDir(mp), { ignore: ['dirNlink'] }), [], 'content equals the kernel overlay of the loop-mounted layers');
    for (const h of hexes) assert.match(dmStatus(`${h}-verity`), / verity V$/);
    const v = await cli(['verify', mp], runDir);
    assert.equal(v.status, 0, showResult(v));
    assert.deepEqual(v.stdout.trim().split('\n').sort(), hexes.map((h) => `/dev/mapper/${h}-verity: OK`).sort());
    await umountClean(mp, runDir, dir, hexes);

    const mf = await cli(['mount', `${oci}:flip`, mp], runDir);
    assert.equal(mf.status, 0, `a damaged data block does not stop the mount: ${showResult(mf)}`);
    assert.equal(readFileSync(join(mp, 'keep.txt'), 'utf8'), 'this file is not damaged\n');
    assert.deepEqual(eioFiles(mp, ['random.bin', 'keep.txt', 'etc/erofs.conf']), ['random.bin'], 'random.bin fails with EIO, never wrong bytes');
    assert.match(dmStatus(`${flippedHex}-verity`), / verity C$/, 'dm-verity saw the corruption');
    const vf = await cli(['verify', mp], runDir);
    assert.equal(vf.status, 1, showResult(vf));
    assert.match(vf.stdout, new RegExp(`^/dev/mapper/${flippedHex}-verity: CORRUPTION FOUND$`, 'm'));
    await umountClean(mp, runDir, dir, [...hexes, flippedHex]);
  });

  test('--writeable on the dm path: changes visible, gone at umount, the layers untouched', async (t) => {
    if (!needDm(t)) return;
    const f = fx!;
    const { dir, mp, runDir } = caseDir(t, 'rw');
    const before = f.triFiles.map((l) => sha256Hex(l.file));
    const m = await cli(['mount', '--writeable', `${f.oci}:tri`, mp], runDir);
    assert.equal(m.status, 0, showResult(m));
    assert.deepEqual(layerSources(dir), f.triHex.map((h) => `/dev/mapper/${h}-verity`).sort());
    const mi = mountAt(mp)!;
    assert.match(mi.superOptions, /upperdir=/, 'an overlay with an upper dir');
    writeFileSync(join(mp, 'new-file'), 'written through the overlay\n');
    assert.equal(readFileSync(join(mp, 'new-file'), 'utf8'), 'written through the overlay\n');
    await umountClean(mp, runDir, dir, f.triHex);
    assert.ok(!existsSync(join(mp, 'new-file')), 'the change went with the mount');
    assert.deepEqual(f.triFiles.map((l) => sha256Hex(l.file)), before, 'layer files unchanged');
    for (const [i, h] of f.triHex.entries()) assert.equal(sha256Hex(join(f.oci, 'blobs/sha256', h)), h, `blob ${i + 1} unchanged`);
  });

  test('--persist DIR and --upper DIR on the dm path: changes kept where asked, remount sees them', async (t) => {
    if (!needDm(t)) return;
    const f = fx!;
    const { dir, mp, runDir } = caseDir(t, 'persist');
    for (const flag of ['--persist', '--upper'] as const) {
      const keep = join(dir, flag.slice(2));
      const m = await cli(['mount', flag, keep, `${f.oci}:tri`, mp], runDir);
      if (flag === '--upper' && m.status !== 0 && /unknown option|--upper/.test(m.stderr)) {
        t.diagnostic(`--upper is not available yet: ${m.stderr.trim()}`);
        continue;
      }
      assert.equal(m.status, 0, showResult(m));
      assert.deepEqual(layerSources(dir), f.triHex.map((h) => `/dev/mapper/${h}-verity`).sort());
      writeFileSync(join(mp, 'kept'), `kept by ${flag}\n`);
      await umountClean(mp, runDir, dir, f.triHex);
      const upper = flag === '--persist' ? join(keep, 'persist') : keep;
      assert.equal(readFileSync(join(upper, 'kept'), 'utf8'), `kept by ${flag}\n`, `the change is in ${upper}`);
      const again = await cli(['mount', flag, keep, `${f.oci}:tri`, mp], runDir);
      assert.equal(again.status, 0, showResult(again));
      assert.equal(readFileSync(join(mp, 'kept'), 'utf8'), `kept by ${flag}\n`, 'a remount shows it');
      await umountClean(mp, runDir, dir, f.triHex);
    }
  });

  for (const after of ['umount', 'mount'] as const) {
    test(`kill -9 of atomfs mount halfway (a layer mounted, the overlay not yet): a later ${after} cleans up`, async (t) => {
      if (!needDm(t)) return;
      const f = fx!;
      const { dir, mp, runDir } = caseDir(t, `kill-${after}`);
      const child = spawn(process.execPath, [ATOMFS_BIN, 'mount', '--metadir', runDir, `${f.oci}:tri`, mp], { stdio: 'ignore' });
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      // Kill at the first layer mount: the device is open, two layers and the overlay are not done.
      let killedAt = '';
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline && child.exitCode === null) {
        const layers = layerSources(dir);
        if (layers.length >= 1) {
          child.kill('SIGKILL');
          killedAt = `${layers.length} layer mount(s), ${ourDevices(f.triHex).length} device(s)`;
          break;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      await exited;
      assert.notEqual(killedAt, '', 'the mount was killed before it finished');
      t.diagnostic(`killed at ${killedAt}`);
      assert.equal(mountAt(mp), undefined, 'the overlay was not mounted yet');
      assert.ok(ourDevices(f.triHex).length >= 1, 'a device was left open by the killed mount');
      if (after === 'umount') {
        await umountClean(mp, runDir, dir, f.triHex);
      } else {
        const m = await cli(['mount', `${f.oci}:tri`, mp], runDir);
        assert.equal(m.status, 0, showResult(m));
        assert.deepEqual(layerSources(dir), f.triHex.map((h) => `/dev/mapper/${h}-verity`).sort(), 'the layers mounted once each');
        assert.deepEqual(compareSnapshots(f.truth, await snapshotDir(mp), { ignore: ['dirNlink'] }), []);
        await umountClean(mp, runDir, dir, f.triHex);
      }
    });
  }
});
