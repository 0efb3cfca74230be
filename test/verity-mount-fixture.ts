/**
 * The two-layer verity image shared by the verity-mount test files (their header comments say
 * what each checks), and the helpers they share.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { chmodSync, closeSync, copyFileSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { writeLayout } from '@atomfs/oci';
import {
  generateTree,
  isMounted,
  keyToName,
  keyToPath,
  makeContent,
  makeTempDir,
  processCleanup,
  Prng,
  run,
  runSync,
  snapshotDir,
  useCleanup,
  withLoopMount,
  withOverlayMount,
  type CleanupStack,
  type EntrySnap,
  type RunResult,
  type Snapshot,
} from './lib/index.js';


export const ATOMFS = fileURLToPath(new URL('../../bin/atomfs', import.meta.url));
export const TAG = 'img';
export const SEED = 0x5eed0005;
export const USER = 'atomfs-test-vmount';
export const BLOCK = 4096;
/** Temp dirs of this file are atomfs-vm-*: leftover servers are found by that name. */
export let PREFIX = 'vm';

// ---- the probe: runs in a child process (also inside a user namespace) -----------------------

export interface ProbeItem {
  /** Path below the root, bytes as base64 ("" = the root). */
  p: string;
  t: EntrySnap['type'];
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  rdev?: number;
  /** Symlink target bytes, base64. */
  target?: string;
  sha?: string;
  /** Directory: child names (base64), sorted. */
  names?: string[];
}

/**
 * Checks every item under `root` and returns one verdict per item: "ok", "eio", "error CODE" or
 * "diff FIELD". Self-contained (stringified into a child process), hence the injected modules.
 */
export function probeTree(
  root: string,
  items: ProbeItem[],
  owners: boolean,
  fs: typeof import('node:fs'),
  crypto: typeof import('node:crypto'),
): string[] {
  const rootBuf = Buffer.from(root);
  const verdict = (it: ProbeItem): string => {
    const path = Buffer.concat([rootBuf, Buffer.from(it.p, 'base64')]);
    try {
      const st = fs.lstatSync(path);
      if (st.mode !== it.mode) return `diff mode 0${st.mode.toString(8)}`;
      if (owners && (st.uid !== it.uid || st.gid !== it.gid)) return `diff owner ${st.uid}:${st.gid}`;
      if (it.t !== 'dir' && st.size !== it.size) return `diff size ${st.size}`;
      if (Math.floor(st.mtimeMs / 1000) !== it.mtime) return `diff mtime ${st.mtimeMs}`;
      if (it.rdev !== undefined && st.rdev !== it.rdev) return `diff rdev ${st.rdev}`;
      if (it.t === 'symlink' && !fs.readlinkSync(path, { encoding: 'buffer' }).equals(Buffer.from(it.target ?? '', 'base64'))) return 'diff target';
      if (it.t === 'file' && crypto.createHash('sha256').update(fs.readFileSync(path)).digest('hex') !== it.sha) return 'diff content';
      if (it.t === 'dir') {
        const names = fs
          .readdirSync(path, { encoding: 'buffer' })
          .map((n) => n.toString('base64'))
          .sort();
        if (names.join('/') !== (it.names ?? []).join('/')) return 'diff listing';
      }
      return 'ok';
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return code === 'EIO' ? 'eio' : `error ${code ?? String(err)}`;
    }
  };
  return items.map(verdict);
}

export const PROBE_SCRIPT = `const fs = require('node:fs'), crypto = require('node:crypto');
let input = '';
process.stdin.setEncoding('utf8').on('data', (d) => (input += d)).on('end', () => {
  const { root, items, owners } = JSON.parse(input);
  process.stdout.write(JSON.stringify((${probeTree.toString()})(root, items, owners, fs, crypto)));
});
`;

export function probeItems(snap: Snapshot): ProbeItem[] {
  const children = new Map<string, string[]>();
  for (const key of snap.keys()) {
    if (key === '/') continue;
    const parent = key.slice(0, key.lastIndexOf('/')) || '/';
    const name = keyToName(key.slice(key.lastIndexOf('/') + 1)).toString('base64');
    const list = children.get(parent) ?? [];
    list.push(name);
    children.set(parent, list);
  }
  return [...snap.values()].map((e) => ({
    p: keyToPath(Buffer.alloc(0), e.path).toString('base64'),
    t: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size: e.size,
    mtime: e.mtime,
    ...(e.rdev !== undefined ? { rdev: e.rdev } : {}),
    ...(e.target !== undefined ? { target: keyToName(e.target).toString('base64') } : {}),
    ...(e.sha256 !== undefined ? { sha: e.sha256 } : {}),
    ...(e.type === 'dir' ? { names: (children.get(e.path) ?? []).sort() } : {}),
  }));
}

/** Probe `root` in a child node process; returns path key → verdict. */
export async function probe(root: string, snap: Snapshot, owners = true): Promise<Map<string, string>> {
  const keys = [...snap.keys()];
  const r = await run([process.execPath, '-e', PROBE_SCRIPT], { input: JSON.stringify({ root, items: probeItems(snap), owners }), timeoutMs: 120_000 });
  const verdicts = JSON.parse(r.stdout.toString('utf8')) as string[];
  return new Map(keys.map((k, i) => [k, verdicts[i]!]));
}

// ---- the image ---------------------------------------------------------------------------------

export interface TreeLayout {
  levels: number;
  /** First file block of each level (0 = leaves). */
  levelStart: number[];
  levelSize: number[];
}

export interface BuiltLayer {
  name: 'base' | 'top';
  digest: string;
  /** The blob in the pristine layout. */
  blob: string;
  rootHash: string;
  bytesUsed: number;
  /** Where the verity superblock is: bytes_used rounded up to 4096. */
  H: number;
  /** Squashfs superblock fields (offsets of the tables). */
  sq: { inodeTable: number; dirTable: number; fragTable: number; idTable: number };
  tree: TreeLayout;
  dataBlocks: number;
  /** Snapshot of this layer alone through the kernel's squashfs. */
  truth: Snapshot;
}

/** The cryptsetup tree geometry for sha256 and 4 KiB blocks, computed here independently. */
export function treeLayout(dataBlocks: number, H: number): TreeLayout {
  let levels = 0;
  while (levels * 7 < 64 && Math.floor((dataBlocks - 1) / 128 ** levels) !== 0) levels++;
  const levelSize: number[] = [];
  for (let i = 0; i < levels; i++) levelSize.push(Math.ceil(dataBlocks / 128 ** (i + 1)));
  const levelStart: number[] = new Array<number>(levels).fill(0);
  let pos = H / BLOCK + 1;
  for (let i = levels - 1; i >= 0; i--) {
    levelStart[i] = pos;
    pos += levelSize[i]!;
  }
  return { levels, levelStart, levelSize };
}

export let work: string;
export let ociDir: string;
export let layers: BuiltLayer[];
export let truth: Snapshot;

export async function buildLayer(name: 'base' | 'top', src: string): Promise<Omit<BuiltLayer, 'digest' | 'blob' | 'truth'> & { file: string }> {
  const file = join(work, `${name}.sqfs`);
  await run(['mksquashfs', src, file, '-noappend', '-quiet', '-no-progress', '-comp', 'zstd']);
  const head = readFileSync(file).subarray(0, 96);
  const bytesUsed = Number(head.readBigUInt64LE(40));
  const H = Math.ceil(bytesUsed / BLOCK) * BLOCK;
  assert.equal(statSync(file).size, H, 'mksquashfs pads to 4096: the file size is the hash offset');
  const out = (await run(['veritysetup', 'format', file, file, `--hash-offset=${H}`, `--data-blocks=${H / BLOCK}`])).stdout.toString('utf8');
  const rootHash = /Root hash:\s+([0-9a-f]{64})/.exec(out)?.[1];
  assert.ok(rootHash, `veritysetup printed a root hash:\n${out}`);
  const tree = treeLayout(H / BLOCK, H);
  const hashBlocks = Number(/Hash blocks:\s+(\d+)/.exec(out)?.[1]);
  assert.equal(hashBlocks, tree.levelSize.reduce((a, b) => a + b, 0), 'tree geometry agrees with veritysetup');
  assert.equal(statSync(file).size, (tree.levelStart[0]! + tree.levelSize[0]!) * BLOCK, 'the tree ends the file');
  const sq = {
    idTable: Number(head.readBigUInt64LE(48)),
    inodeTable: Number(head.readBigUInt64LE(64)),
    dirTable: Number(head.readBigUInt64LE(72)),
    fragTable: Number(head.readBigUInt64LE(80)),
  };
  return { name, file, rootHash, bytesUsed, H, sq, tree, dataBlocks: H / BLOCK };
}

/** Build the two-layer image and the kernel's truth; `prefix` names this file's temp dirs. */
export async function setupVerityFixture(prefix: string): Promise<void> {
  PREFIX = prefix;
  work = makeTempDir(`${PREFIX}-image`, processCleanup);
  chmodSync(work, 0o755); // the user-namespace case reads the layout as another user
  const baseSrc = join(work, 'base-src');
  const topSrc = join(work, 'top-src');
  const info = await generateTree(baseSrc, { medium: false });
  // char 0:0 is an overlay whiteout: in the bottom layer the kernel lists it in an unmerged
  // directory but cannot look it up, so it has no place in an image (and no truth).
  for (const k of info.paths.charDevices.filter((k) => k.endsWith('char-0-0'))) rmSync(keyToPath(baseSrc, k));
  // The upper layer replaces a file, deletes one (overlay whiteout: char 0/0) and adds a
  // directory with a file large enough for a tree level (> 1 data block).
  mkdirSync(join(topSrc, 'files'), { recursive: true });
  mkdirSync(join(topSrc, 'newdir'));
  writeFileSync(join(topSrc, 'files', 's1-random'), 'replaced by the top layer\n');
  await run(['mknod', join(topSrc, 'files', 'r4096'), 'c', '0', '0']);
  writeFileSync(join(topSrc, 'newdir', 'rand.bin'), makeContent('random', 60_000, 4242));
  writeFileSync(join(topSrc, 'newdir', 'text.txt'), makeContent('text', 30_000, 4243));
  const built = [await buildLayer('base', baseSrc), await buildLayer('top', topSrc)];
  ociDir = join(work, 'oci');
  const written = await writeLayout(ociDir, { tag: TAG, layers: built.map((b) => ({ file: b.file, rootHash: b.rootHash })) });
  // Ground truth from the kernel: each layer through its squashfs, the image through overlayfs.
  const snaps: Snapshot[] = [];
  truth = await withLoopMount(built[0]!.file, (baseMp) =>
    withLoopMount(built[1]!.file, async (topMp) => {
      snaps.push(await snapshotDir(baseMp, { xattrs: false }), await snapshotDir(topMp, { xattrs: false }));
      return withOverlayMount([topMp, baseMp], (mp) => snapshotDir(mp));
    }),
  );
  layers = built.map((b, i) => ({ ...b, digest: written.layers[i]!.digest, blob: written.layers[i]!.path, truth: snaps[i]! }));
  assert.ok(truth.size > 900, `the image is not trivially small (${truth.size} entries)`);
  assert.ok(layers[0]!.tree.levels >= 2 && layers[1]!.tree.levels === 1, 'the base layer has two tree levels, the top one');
}

/** Clean up and check no server of this file is left running. */
export function teardownVerityFixture(): void {
  try {
    processCleanup.run();
  } finally {
    const left = ourServers(join(tmpdir(), `atomfs-${PREFIX}-`));
    assert.deepEqual(left, [], 'no atomfs server of this file is left running');
  }
}

// ---- helpers -----------------------------------------------------------------------------------

export function atomfs(args: string[]): Promise<RunResult> {
  return run([ATOMFS, ...args], { allowFail: true, timeoutMs: 120_000 });
}

export function text(b: Buffer): string {
  return b.toString('utf8');
}

/** PIDs of processes whose command line mentions `dir` (our servers: their spec file lives there). */
export function ourServers(dir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmd.includes('__serve') && cmd.includes(dir)) pids.push(Number(name));
  }
  return pids;
}

export function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Copy the pristine layout to `dir`; blobs are hard links except `copyBlob`, a real copy. */
export function copyLayout(dir: string, copyBlob: string | undefined): string {
  const dst = join(dir, 'oci');
  mkdirSync(join(dst, 'blobs', 'sha256'), { recursive: true });
  for (const f of ['oci-layout', 'index.json']) copyFileSync(join(ociDir, f), join(dst, f));
  for (const b of readdirSync(join(ociDir, 'blobs', 'sha256'))) {
    const from = join(ociDir, 'blobs', 'sha256', b);
    const to = join(dst, 'blobs', 'sha256', b);
    if (from === copyBlob) copyFileSync(from, to);
    else linkSync(from, to);
  }
  return dst;
}

export function flipBit(file: string, offset: number, bit: number): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    assert.equal(readSync(fd, b, 0, 1, offset), 1, `offset ${offset} is inside ${file}`);
    b[0]! ^= 1 << bit;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

/** The mount's server pid from its record (--metadir RUN). */
export function serverPid(runDir: string): number | undefined {
  const meta = join(runDir, 'meta');
  if (!existsSync(meta)) return undefined;
  for (const ns of readdirSync(meta)) {
    for (const m of readdirSync(join(meta, ns))) {
      const cfg = join(meta, ns, m, 'config.json');
      if (existsSync(cfg)) return (JSON.parse(readFileSync(cfg, 'utf8')) as { atomfs: { serverPid?: number } }).atomfs.serverPid;
    }
  }
  return undefined;
}

export function alive(pid: number): boolean {
  try {
    // A zombie (exited, not yet reaped by init) counts as gone.
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Waits for `pid` to exit: `atomfs umount` waits 5 s for its server, a loaded machine may need longer. */
export async function exited(pid: number, ms = 20_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** Undo a mount made by `atomfs mount --metadir runDir` even if the test failed midway. */
export function registerMountCleanup(stack: CleanupStack, mp: string, runDir: string, caseDir: string): void {
  stack.add(`unmount ${mp}`, () => {
    if (isMounted(mp)) runSync([ATOMFS, 'umount', '--metadir', runDir, mp], { allowFail: true, timeoutMs: 30_000 });
    if (isMounted(mp)) runSync(['umount', '-l', mp], { allowFail: true });
    killPids(ourServers(caseDir));
  });
}

export function oneLineError(r: RunResult): string {
  const err = text(r.stderr).trimEnd();
  assert.equal(r.status, 1, `exit status 1 (stderr: ${err})`);
  assert.equal(err.split('\n').length, 1, `one line of error: ${err}`);
  assert.match(err, /^Error: /);
  return err;
}

/** Entries of the merged view whose data or metadata comes from `layer`'s copy of `key`. */
export function visibleFrom(layer: BuiltLayer, key: string): boolean {
  const e = truth.get(key);
  if (e === undefined) return false;
  if (layer.name === 'top') return true;
  const inTop = layers[1]!.truth.get(key);
  // Directories merge (the lower listing is read); anything else in the top layer hides the lower one.
  return inTop === undefined || (inTop.type === 'dir' && e.type === 'dir');
}

// ---- the flips ---------------------------------------------------------------------------------

export type Region =
  | 'sqfs-superblock'
  | 'data'
  | 'inode-table'
  | 'dir-table'
  | 'other-tables'
  | 'padding'
  | 'vsb-signature'
  | 'vsb-data-blocks'
  | 'vsb-salt-size'
  | 'vsb-salt'
  | 'vsb-uuid'
  | 'vsb-pad'
  | 'vsb-block-rest'
  | 'tree-top'
  | 'tree-leaf'
  | 'tree-leaf-spare';

export interface FlipCase {
  id: number;
  layer: number;
  region: Region;
  offset: number;
  bit: number;
}

/** Regions where a flip changes what the dm-verity tree protects (data, tree) or how it is read. */
export const MUST_FAIL: ReadonlySet<Region> = new Set<Region>([
  'sqfs-superblock',
  'data',
  'inode-table',
  'dir-table',
  'other-tables',
  'padding',
  'vsb-signature',
  'vsb-data-blocks',
  'vsb-salt-size',
  'vsb-salt',
  'tree-top',
  'tree-leaf',
  'tree-leaf-spare',
]);
/** Bytes nobody reads: veritysetup verify passes, so must we, and the mount must be complete. */
export const MUST_PASS: ReadonlySet<Region> = new Set<Region>(['vsb-uuid', 'vsb-pad', 'vsb-block-rest']);
/** Every byte of these is needed by some lstat/read/readdir (tables like the export table are not). */
export const READ_BY_PROBE: ReadonlySet<Region> = new Set<Region>(['data', 'inode-table', 'dir-table', 'tree-leaf', 'tree-leaf-spare']);
/** Checked when the layer is opened (block 0, the superblock, the top hash block): mount refused. */
export const MUST_REFUSE: ReadonlySet<Region> = new Set<Region>(['sqfs-superblock', 'vsb-signature', 'vsb-data-blocks', 'vsb-salt-size', 'vsb-salt', 'tree-top']);

export function makeCases(): FlipCase[] {
  const rng = new Prng(SEED);
  const cases: FlipCase[] = [];
  const add = (layer: number, region: Region, from: number, to: number, n: number): void => {
    assert.ok(to > from, `region ${region} of layer ${layer} is not empty`);
    for (let i = 0; i < n; i++) cases.push({ id: cases.length, layer, region, offset: from + rng.below(to - from), bit: rng.below(8) });
  };
  for (const [li, l] of layers.entries()) {
    const H = l.H;
    const top = l.tree.levelStart[l.tree.levels - 1]! * BLOCK;
    const big = li === 0;
    add(li, 'data', 96, l.sq.inodeTable, big ? 10 : 2);
    if (big) {
      add(li, 'sqfs-superblock', 0, 96, 2);
      add(li, 'inode-table', l.sq.inodeTable, l.sq.dirTable, 3);
      add(li, 'dir-table', l.sq.dirTable, l.sq.fragTable, 3);
      add(li, 'other-tables', l.sq.fragTable, l.bytesUsed, 3);
      add(li, 'padding', l.bytesUsed, H, 1);
      add(li, 'vsb-signature', H, H + 8, 1);
      add(li, 'vsb-data-blocks', H + 72, H + 75, 1);
      add(li, 'vsb-salt-size', H + 80, H + 81, 1);
      add(li, 'vsb-uuid', H + 16, H + 32, 1);
      add(li, 'vsb-pad', H + 344, H + 512, 1);
      add(li, 'vsb-block-rest', H + 512, H + BLOCK, 1);
      add(li, 'tree-top', top, top + BLOCK, 2);
      const leaf0 = l.tree.levelStart[0]! * BLOCK;
      const lastLeaf = leaf0 + (l.tree.levelSize[0]! - 1) * BLOCK;
      add(li, 'tree-leaf', leaf0, lastLeaf, 3);
      const used = l.dataBlocks - (l.tree.levelSize[0]! - 1) * 128;
      assert.ok(used < 128, 'the last leaf block has a zero spare area');
      add(li, 'tree-leaf-spare', lastLeaf + used * 32, lastLeaf + BLOCK, 1);
    } else {
      add(li, 'inode-table', l.sq.inodeTable, l.bytesUsed, 1);
      add(li, 'tree-top', top, top + BLOCK, 1);
    }
    add(li, 'vsb-salt', H + 88, H + 88 + 32, 1);
  }
  return cases;
}

export interface Outcome {
  refused: boolean;
  eio: number;
  kernelDamaged: number | 'unmountable' | 'n/a';
}

/** Kernel's view of `layer` with the whole 4 KiB block around `offset` garbled: paths that differ. */
export async function kernelDamage(l: BuiltLayer, caseDir: string, offset: number, seed: number): Promise<Set<string> | 'unmountable'> {
  const copy = join(caseDir, 'garbled.sqfs');
  copyFileSync(l.blob, copy);
  const fd = openSync(copy, 'r+');
  try {
    const block = Math.floor(offset / BLOCK) * BLOCK;
    const junk = makeContent('random', BLOCK, seed);
    // Keep the superblock's own bytes when the block is block 0: the kernel must still mount it.
    if (block === 0) junk.set(readFileSync(l.blob).subarray(0, 96), 0);
    writeSync(fd, junk, 0, BLOCK, block);
  } finally {
    closeSync(fd);
  }
  let mounted = false;
  try {
    return await withLoopMount(copy, (mp) => {
      mounted = true;
      // In this process: the kernel's squashfs answers at once (no server that could hang).
      const keys = [...l.truth.keys()];
      const v = probeTree(mp, probeItems(l.truth), true, fs, crypto);
      return new Set(keys.filter((_, i) => v[i] !== 'ok'));
    });
  } catch (err) {
    if (!mounted) return 'unmountable';
    throw err;
  }
}

export async function runCase(t: TestContext, c: FlipCase): Promise<Outcome> {
  const stack = useCleanup(t);
  const l = layers[c.layer]!;
  const other = layers[1 - c.layer]!;
  const dir = makeTempDir(`${PREFIX}-case${c.id}`, stack);
  stack.add(`kill servers of ${dir}`, () => killPids(ourServers(dir)));
  const oci = copyLayout(dir, l.blob);
  const blob = join(oci, 'blobs', 'sha256', l.digest.slice('sha256:'.length));
  flipBit(blob, c.offset, c.bit);
  const t0 = Date.now();
  const laps: string[] = [];
  const lap = (what: string): void => {
    laps.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)}`);
  };

  // veritysetup and atomfs verify agree.
  // Independent steps run side by side: the suite's time is mostly process start-up and waiting.
  const kernelP = c.offset < l.H ? kernelDamage(l, dir, c.offset, SEED + c.id) : Promise.resolve('n/a' as const);
  kernelP.catch(() => undefined); // awaited below; not "unhandled" if an assertion fails first
  const [vs, av] = await Promise.all([
    run(['veritysetup', 'verify', blob, blob, l.rootHash, `--hash-offset=${l.H}`], { allowFail: true }),
    atomfs(['verify', '--json', `${oci}:${TAG}`]),
  ]);
  lap('verify');
  const verdicts = JSON.parse(text(av.stdout)) as { layer: string; status: string }[];
  const mine = verdicts.find((v) => v.layer === l.digest);
  assert.equal(verdicts.find((v) => v.layer === other.digest)?.status, 'OK', 'the untouched layer verifies');
  assert.equal(mine?.status === 'OK', vs.status === 0, `atomfs verify (${mine?.status}) agrees with veritysetup verify (exit ${vs.status}: ${text(vs.stderr).trim()})`);
  assert.equal(av.status, vs.status === 0 ? 0 : 1, 'atomfs verify exit status');
  if (MUST_FAIL.has(c.region)) assert.notEqual(vs.status, 0, 'veritysetup verify finds the flip');
  if (MUST_PASS.has(c.region)) assert.equal(vs.status, 0, 'veritysetup verify ignores this byte');

  // Mount.
  const mp = join(dir, 'mp');
  const runDir = join(dir, 'run');
  mkdirSync(mp);
  registerMountCleanup(stack, mp, runDir, dir);
  const m = await atomfs(['mount', '--metadir', runDir, `${oci}:${TAG}`, mp]);
  lap('mount');
  if (m.status !== 0) {
    const err = oneLineError(m);
    assert.ok(err.includes(l.digest), `the error names the damaged layer: ${err}`);
    assert.ok(!isMounted(mp), 'nothing mounted');
    assert.deepEqual(ourServers(dir), [], 'no server left behind');
    assert.notEqual(vs.status, 0, `a layer veritysetup accepts must mount: ${err}`);
    await kernelP;
    return { refused: true, eio: 0, kernelDamaged: 'n/a' };
  }
  assert.ok(!MUST_REFUSE.has(c.region), `a flip in ${c.region} must make the mount fail`);
  const pid = serverPid(runDir);
  assert.ok(pid !== undefined && alive(pid), 'the server runs');

  const ours = await probe(mp, truth);
  lap('probe');
  const bad = [...ours].filter(([, r]) => r !== 'ok' && r !== 'eio');
  assert.deepEqual(bad, [], 'every access gives EIO or exactly the original');
  const eio = new Set([...ours].filter(([, r]) => r === 'eio').map(([k]) => k));
  if (vs.status === 0) assert.equal(eio.size, 0, 'an intact layer reads completely');
  else if (READ_BY_PROBE.has(c.region)) assert.ok(eio.size > 0, 'the damaged block is read by some access and fails');

  let kernelDamaged: Outcome['kernelDamaged'] = 'n/a';
  const damaged = await kernelP;
  lap('kernel');
  if (damaged !== 'n/a') {
    if (damaged !== 'unmountable') {
      const expected = [...damaged].filter((k) => visibleFrom(l, k));
      const missed = expected.filter((k) => !eio.has(k));
      assert.deepEqual(missed, [], 'everything in the damaged block (per the kernel, unverified) fails with EIO');
      if (c.region === 'data') assert.ok(expected.length > 0, 'the flip hit file data');
      kernelDamaged = expected.length;
    } else kernelDamaged = 'unmountable';
  }

  // Still serving: the root, and an intact file if there is one.
  assert.ok(statSync(mp).isDirectory());
  const good = [...ours].find(([k, r]) => r === 'ok' && truth.get(k)!.type === 'file' && truth.get(k)!.size > 0);
  if (good !== undefined) {
    const bytes = readFileSync(keyToPath(mp, good[0]));
    assert.equal(createHash('sha256').update(bytes).digest('hex'), truth.get(good[0])!.sha256, 'an intact file still reads after the errors');
  }
  assert.ok(alive(pid!), 'the server survived every error');

  const vm = await atomfs(['verify', '--metadir', runDir, mp]);
  lap('verify-mp');
  if (vs.status !== 0) {
    assert.equal(vm.status, 1, 'atomfs verify MOUNTPOINT fails');
    assert.match(text(vm.stdout), new RegExp(`^${l.digest}: CORRUPTION FOUND`, 'm'));
  } else assert.equal(vm.status, 0, `atomfs verify MOUNTPOINT passes: ${text(vm.stdout)}${text(vm.stderr)}`);
  assert.match(text(vm.stdout), new RegExp(`^${other.digest}: OK`, 'm'));

  const u = await atomfs(['umount', '--metadir', runDir, mp]);
  assert.equal(u.status, 0, text(u.stderr));
  assert.ok(!isMounted(mp));
  assert.ok(await exited(pid!), 'the server exited');
  lap('umount');
  t.diagnostic(`seconds: ${laps.join(', ')}`);
  return { refused: false, eio: eio.size, kernelDamaged };
}

// ---- tests -------------------------------------------------------------------------------------

