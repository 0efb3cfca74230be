/**
 * Issue 18: images whose layers are erofs (mkfs.erofs + dm-verity data appended as stacker
 * does), alone and mixed with squashfs layers, mount and read as the kernel shows them:
 *  - through the FUSE backend with every block verified, compared with the kernel's overlayfs
 *    over the kernel's own squashfs and erofs loop mounts of the same layer files;
 *  - through the kernel backend (loop + `mount -t erofs` per layer, overlayfs);
 *  - `atomfs ls` / `atomfs cat` of the image read the same;
 *  - a flipped data byte in an erofs layer gives EIO for the file it hits (never wrong bytes),
 *    everything else reads right, and `atomfs verify` reports CORRUPTION FOUND for that layer.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeLayout, type WrittenImage } from '@atomfs/oci';
import {
  chmodDevFuse,
  compareSnapshots,
  ensureTestUser,
  generateTree,
  isMounted,
  keyToPath,
  makeTempDir,
  processCleanup,
  readMountinfo,
  run,
  runAsUserInUserns,
  runSync,
  snapshotDir,
  trackBackingFile,
  useCleanup,
  withLoopMount,
  withOverlayMount,
  type CleanupStack,
  type Snapshot,
} from './lib/index.js';
import { atomfs as atomfsCli, ATOMFS_BIN } from './atomfs-cli.js';
import { dropLongNames, packErofs, type BuiltLayer } from './erofs-images.js';
import { overlayRounds, packLayer, patchFile, ROUND1, ROUND2 } from './oci-images.js';

const SQUASHFS_ZSTD = 'application/vnd.stacker.image.layer.squashfs+zstd';

let work: string;
let oci: string;
let layers: BuiltLayer[];
let erofsOnly: BuiltLayer[];
let written: WrittenImage;
/** The kernel's overlayfs over the kernel's mounts of the three layer files. */
let truth: Snapshot;

/** st_blksize and mtime in nanoseconds of every entry below `root` (snapshots keep whole seconds). */
function fineTimes(root: string): Map<string, string> {
  const out = new Map<string, string>();
  // Names are bytes (some are not UTF-8): paths stay Buffers, keys are their latin1 spelling.
  const visit = (path: Buffer, rel: string): void => {
    const st = lstatSync(path, { bigint: true });
    out.set(rel || '/', `blksize ${st.blksize} mtime ${st.mtimeNs}`);
    if (!st.isDirectory()) return;
    for (const n of readdirSync(path, { encoding: 'buffer' })) visit(Buffer.concat([path, Buffer.from('/'), n]), `${rel}/${n.toString('latin1')}`);
  };
  visit(Buffer.from(root), '');
  return out;
}
let kernelFine: Map<string, string>;

async function kernelMerged(files: readonly BuiltLayer[]): Promise<Snapshot> {
  const mps: string[] = [];
  const nest = async (i: number): Promise<Snapshot> => {
    if (i === files.length) {
      return withOverlayMount(
        [...mps].reverse(),
        (mp) => {
          kernelFine = fineTimes(mp);
          return snapshotDir(mp);
        },
        { userxattr: true, extraOptions: ['ro'] },
      );
    }
    return withLoopMount(files[i]!.file, (mp) => {
      mps.push(mp);
      return nest(i + 1);
    }, { fsType: files[i]!.fsType });
  };
  return nest(0);
}

before(async () => {
  work = makeTempDir('erofs-mount', processCleanup);
  const base = join(work, 'base');
  await generateTree(base, { medium: false });
  dropLongNames(base);
  const dirs = await overlayRounds(join(work, 'layers'), (mkdirSync(join(work, 'layers')), base), [ROUND1, ROUND2]);
  const sq = await packLayer(dirs[0]!, join(work, 'L1.sqfs'));
  layers = [
    { file: sq.file, fsType: 'squashfs', mediaType: SQUASHFS_ZSTD, rootHash: sq.rootHash! },
    await packErofs(dirs[1]!, join(work, 'L2.erofs'), ['-zlz4hc', '-C16384']),
    await packErofs(dirs[2]!, join(work, 'L3.erofs'), ['-zlz4', '-Eztailpacking']),
  ];
  oci = join(work, 'oci');
  written = await writeLayout(oci, { tag: 'mixed', layers: layers.map((l) => ({ file: l.file, mediaType: l.mediaType, rootHash: l.rootHash })) });
  await writeLayout(oci, { tag: 'mixed-noverity', layers: layers.map((l) => ({ file: l.file, mediaType: l.mediaType })) });
  // All three as erofs: the base uncompressed (flat and tail-packed data through the verified path).
  erofsOnly = [await packErofs(dirs[0]!, join(work, 'L1.erofs'), []), ...layers.slice(1)];
  await writeLayout(oci, { tag: 'erofs-only', layers: erofsOnly.map((l) => ({ file: l.file, mediaType: l.mediaType, rootHash: l.rootHash })) });
  for (const l of written.layers) trackBackingFile(l.path);
  truth = await kernelMerged(layers);
});
after(() => processCleanup.run());

/** Undo a mount made by `atomfs mount --metadir runDir` even if the test failed midway. */
function mountCase(stack: CleanupStack, name: string): { mp: string; runDir: string } {
  const dir = makeTempDir(`erofs-${name}`, stack);
  const mp = join(dir, 'mp');
  const runDir = join(dir, 'run');
  mkdirSync(mp);
  stack.add(`umount ${mp}`, () => {
    if (isMounted(mp)) runSync([process.execPath, ATOMFS_BIN, 'umount', '--metadir', runDir, mp], { allowFail: true, timeoutMs: 30_000 });
  });
  return { mp, runDir };
}

const cli = (args: string[]) => atomfsCli(args, { runDir: null });

test('a mixed squashfs+erofs image through FUSE with verity equals the kernel overlay of the kernel mounts', async (t) => {
  const stack = useCleanup(t);
  const { mp, runDir } = mountCase(stack, 'fuse');
  const m = await cli(['mount', '--backend', 'fuse', '--metadir', runDir, `${oci}:mixed`, mp]);
  assert.equal(m.status, 0, m.stderr);
  assert.equal(readMountinfo().find((x) => x.mountpoint === mp)?.fstype, 'fuse.atomfs');
  assert.deepEqual(compareSnapshots(truth, await snapshotDir(mp), { ignore: ['dirNlink'] }), []);
  // Entries of erofs layers keep erofs's nanoseconds and 4096-byte st_blksize, as overlayfs shows them.
  const ours = fineTimes(mp);
  const differ = [...kernelFine].filter(([k, v]) => ours.get(k) !== v).map(([k, v]) => `${k}: kernel ${v}, ours ${ours.get(k)}`);
  assert.deepEqual(differ.slice(0, 10), []);
  const v = await cli(['verify', '--metadir', runDir, mp]);
  assert.equal(v.status, 0, v.stdout + v.stderr);
  assert.equal(v.stdout, written.layers.map((l) => `${l.digest}: OK\n`).reverse().join(''));
  const u = await cli(['umount', '--metadir', runDir, mp]);
  assert.equal(u.status, 0, u.stderr);
  assert.ok(!isMounted(mp));
});

test('an erofs-only image mounts through FUSE with verity', async (t) => {
  const stack = useCleanup(t);
  const { mp, runDir } = mountCase(stack, 'only');
  const m = await cli(['mount', '--backend', 'fuse', '--metadir', runDir, `${oci}:erofs-only`, mp]);
  assert.equal(m.status, 0, m.stderr);
  const kernel = await kernelMerged(erofsOnly);
  assert.deepEqual(compareSnapshots(truth, kernel, { ignore: ['dirNlink'] }), [], 'the same tree as the mixed image');
  assert.deepEqual(compareSnapshots(kernel, await snapshotDir(mp), { ignore: ['dirNlink'] }), []);
  assert.equal((await cli(['umount', '--metadir', runDir, mp])).status, 0);
});

test('the kernel backend mounts erofs layers with mount -t erofs', async (t) => {
  const stack = useCleanup(t);
  const { mp, runDir } = mountCase(stack, 'kernel');
  const m = await cli(['mount', '--backend', 'kernel', '--allow-missing-verity', '--metadir', runDir, `${oci}:mixed-noverity`, mp]);
  assert.equal(m.status, 0, m.stderr);
  const types = readMountinfo().map((x) => x.fstype);
  assert.ok(types.includes('erofs') && types.includes('squashfs'), `layer mounts: ${types.join(' ')}`);
  assert.deepEqual(compareSnapshots(truth, await snapshotDir(mp), { ignore: ['dirNlink'] }), []);
  const u = await cli(['umount', '--metadir', runDir, mp]);
  assert.equal(u.status, 0, u.stderr);
  assert.ok(!readMountinfo().some((x) => x.fstype === 'erofs' && x.source.includes('loop') && x.mountpoint.startsWith(runDir)));
});

test('atomfs ls and cat read a mixed image like the kernel', async () => {
  const l = await cli(['ls', '--json', `${oci}:mixed`]);
  assert.equal(l.status, 0, l.stderr);
  const paths = l.stdout
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { path: string }).path);
  // Keys of names that are not UTF-8 are escaped (names.ts): compare the plain ones.
  const want = [...truth.keys()].filter((k) => !/[^\x20-\x7e]|\\/.test(k));
  assert.ok(want.length > 100);
  for (const k of want) assert.ok(paths.includes(k), `atomfs ls lists ${k}`);
  const c = await run([process.execPath, ATOMFS_BIN, 'cat', `${oci}:mixed`, '/files/r999999']);
  const hash = createHash('sha256').update(c.stdout).digest('hex');
  assert.equal(hash, truth.get('/files/r999999')!.sha256);
});

test('a flipped data byte in an erofs layer reads as EIO, never as wrong bytes; atomfs verify reports it', async (t) => {
  const stack = useCleanup(t);
  const dir = makeTempDir('erofs-tamper', stack);
  const copy = join(dir, 'oci');
  cpSync(oci, copy, { recursive: true });
  // files/r999999 was appended to in round 2: its copy lives in layer 3 (lz4, incompressible
  // data: stored clusters). dump.erofs (erofs-utils) says where its first extent is.
  const l3 = written.layers[2]!;
  const blob = join(copy, 'blobs', 'sha256', l3.digest.slice('sha256:'.length));
  const d = await run(['dump.erofs', '--path=/files/r999999', '-e', layers[2]!.file]);
  const ext = /^\s*0:\s+\d+\.\.\s*\d+\s*\|\s*\d+\s*:\s*(\d+)\.\./m.exec(d.stdout.toString('utf8'));
  assert.ok(ext, `dump.erofs printed extents:\n${d.stdout.toString('utf8')}`);
  const at = Number(ext[1]) + 100;
  const orig = readFileSync(blob).subarray(at, at + 1);
  patchFile(blob, at, Buffer.from([orig[0]! ^ 0x40]));
  const { mp, runDir } = mountCase(stack, 'tamper');
  const m = await cli(['mount', '--backend', 'fuse', '--metadir', runDir, `${copy}:mixed`, mp]);
  assert.equal(m.status, 0, m.stderr);
  assert.throws(() => readFileSync(join(mp, 'files/r999999')), /EIO/);
  // Everything else reads exactly as the untampered image.
  let files = 0;
  for (const [k, e] of truth) {
    if (e.type !== 'file' || k === '/files/r999999') continue;
    const got = readFileSync(keyToPath(mp, k));
    assert.equal(createHash('sha256').update(got).digest('hex'), e.sha256, k);
    files++;
  }
  assert.ok(files > 50);
  const v = await cli(['verify', '--metadir', runDir, mp]);
  assert.equal(v.status, 1);
  assert.match(v.stdout, new RegExp(`^${l3.digest}: CORRUPTION FOUND`, 'm'));
  const vi = await cli(['verify', `${copy}:mixed`]);
  assert.equal(vi.status, 1);
  assert.match(vi.stdout, new RegExp(`^${l3.digest}: CORRUPTION FOUND`, 'm'));
  assert.equal((await cli(['umount', '--metadir', runDir, mp])).status, 0);
});

test('a non-root user in a user namespace mounts the mixed image (FUSE, verity on) and reads what the kernel shows', async (t) => {
  const stack = useCleanup(t);
  const user = ensureTestUser('atomfs-test-erofs', stack);
  chmodDevFuse(); // left 0666, as test/run.sh sets it for every unprivileged test
  const dir = makeTempDir('erofs-userns', stack);
  chmodSync(dir, 0o755);
  const copy = join(dir, 'oci');
  cpSync(oci, copy, { recursive: true });
  runSync(['chmod', '-R', 'a+rX', copy]);
  const mp = join(dir, 'mp');
  const runDir = join(dir, 'run');
  const out = join(dir, 'out');
  for (const d of [mp, runDir, out]) {
    mkdirSync(d);
    chownSync(d, user.uid, user.gid);
  }
  stack.add(`umount ${mp}`, () => {
    if (isMounted(mp)) runSync(['umount', '-l', mp], { allowFail: true });
  });
  const script = `set -u
A="$1"; REF="$2"; MP="$3"; RUN="$4"; OUT="$5"
"$A" mount --metadir "$RUN" "$REF" "$MP" >"$OUT/mount.out" 2>"$OUT/mount.err"; echo $? >"$OUT/mount.rc"
[ "$(cat "$OUT/mount.rc")" = 0 ] || exit 0
grep -F " $MP " /proc/self/mountinfo >"$OUT/mountinfo"
(cd "$MP/files" && find . -maxdepth 1 -type f -name "r*" -exec sha256sum {} + >"$OUT/sums" 2>"$OUT/sums.err"); echo $? >"$OUT/sums.rc"
"$A" verify --metadir "$RUN" "$MP" >"$OUT/verify.out" 2>&1; echo $? >"$OUT/verify.rc"
"$A" umount --metadir "$RUN" "$MP" >"$OUT/umount.out" 2>&1; echo $? >"$OUT/umount.rc"
`;
  const r = await runAsUserInUserns(user.name, ['bash', '-c', script, 'bash', ATOMFS_BIN, `${copy}:mixed`, mp, runDir, out], { timeoutMs: 120_000 });
  const read = (f: string): string => (existsSync(join(out, f)) ? readFileSync(join(out, f), 'utf8').trim() : `(no ${f})`);
  assert.equal(r.status, 0, r.stderr.toString());
  assert.equal(read('mount.rc'), '0', read('mount.err'));
  assert.match(read('mountinfo'), /fuse\.atomfs/);
  assert.equal(read('sums.rc'), '0', read('sums.err'));
  const sums = read('sums').split('\n').map((l) => l.split(/\s+/));
  assert.ok(sums.length > 10, `${sums.length} files summed`);
  for (const [sum, name] of sums) assert.equal(sum, truth.get(`/files/${name!.replace(/^\.\//, '')}`)?.sha256, name);
  assert.equal(read('verify.rc'), '0', read('verify.out'));
  assert.equal(read('umount.rc'), '0', read('umount.out'));
});
