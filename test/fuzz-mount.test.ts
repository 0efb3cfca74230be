/**
 * Issue 7, hostile images: mutation fuzzing through LIVE FUSE mounts (the real CLI, the detached
 * server, the kernel's FUSE client in between). Real mksquashfs images (6 compressors, one with
 * uncompressed metadata so mutations hit structures, not only compressed streams) are mutated
 * with a fixed seed in a targeted region — superblock, data/compressed blocks, inode table,
 * directory table, xattr table, the other tables and their indexes, metadata block headers — and
 * mounted two ways:
 *   - as the bottom layer WITHOUT root hash of a two-layer OCI image (top layer verified),
 *     `atomfs mount --allow-missing-verity --backend fuse`;
 *   - alone, `atomfs sqfs mount` (every other case with 2 read worker threads).
 * Each case: the mount is refused with a one-line "Error: " message and leaves nothing behind, or
 * it serves; then `find`, a walker child process (lstat, readdir, readlink, read every file) and
 * `getfattr -R -d -m -` all finish within their timeouts, fail only with EIO/ENOENT-like errors,
 * the server is still alive and still answers (statfs, a fresh lookup, the verified top layer's
 * sentinel file with its exact bytes), its peak RSS (VmHWM) stays under a bound, and umount ends
 * the server and removes mount and metadir.
 *
 * FUZZ_MOUNT_CASES (default 100) and FUZZ_MOUNT_SEED make longer runs; FUZZ_MOUNT_LANES sets how
 * many cases run at once (default 3).
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, rmSync, linkSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeContent, makeTempDir, Prng, run, useCleanup } from './lib/index.js';
import {
  alive,
  appendVerity,
  assertOneLineError,
  atomfs,
  BENIGN_ERRNOS,
  describe,
  findAll,
  getfattrAll,
  guardNoDebris,
  guardOciMount,
  guardSqfsMount,
  makeLayout,
  metadirOf,
  mksquashfs,
  mountsUnder,
  readRecord,
  runBounded,
  serversUnder,
  sqfsServerPid,
  statusKiB,
  unexpectedToolErrors,
  waitGone,
  walkInWorker,
} from './reliability-common.js';

const CASES = Number(process.env.FUZZ_MOUNT_CASES ?? 100);
const SEED = Number(process.env.FUZZ_MOUNT_SEED ?? 20251125);
const LANES = Math.max(1, Number(process.env.FUZZ_MOUNT_LANES ?? 3));
/** Peak RSS a server may reach on a small hostile image (caches are 8+32 MiB per image, node ~70 MiB). */
const HWM_LIMIT_KIB = Number(process.env.FUZZ_MOUNT_HWM_MIB ?? 320) * 1024;
const SENTINEL = 'zz-sentinel';
const SENTINEL_BYTES = Buffer.from('verified top layer: still served after the fuzzed layer failed\n');

// ---- the images -------------------------------------------------------------------------------

/** A small tree with every entry kind and structure worth corrupting. */
async function makeTree(dir: string): Promise<void> {
  mkdirSync(join(dir, 'a/b/c/d'), { recursive: true });
  mkdirSync(join(dir, 'many'));
  // > 256 entries and long-ish names: several directory headers and a directory index.
  for (let i = 0; i < 300; i++) writeFileSync(join(dir, 'many', `entry-with-a-longer-name-${String(i).padStart(4, '0')}`), `file ${i}\n`);
  writeFileSync(join(dir, 'a/b/c/d/deep.txt'), 'deep\n');
  writeFileSync(join(dir, 'random.bin'), makeContent('random', 150_000, 1));
  writeFileSync(join(dir, 'text.txt'), makeContent('text', 300_000, 2));
  writeFileSync(join(dir, 'mixed.bin'), makeContent('mixed', 70_000, 3));
  writeFileSync(join(dir, 'zeros.bin'), makeContent('zeros', 20_000, 4));
  writeFileSync(join(dir, 'small.txt'), 'small\n');
  writeFileSync(join(dir, 'empty'), '');
  writeFileSync(join(dir, 'x'.repeat(255)), 'long name\n');
  symlinkSync('a/b/c/d/deep.txt', join(dir, 'link'));
  symlinkSync('/etc/shadow', join(dir, 'abs-link'));
  symlinkSync('y'.repeat(3000), join(dir, 'long-link'));
  linkSync(join(dir, 'text.txt'), join(dir, 'a/hardlink.txt'));
  await run(['mkfifo', join(dir, 'fifo')]);
  await run(['mknod', join(dir, 'null'), 'c', '1', '3']);
  chmodSync(join(dir, 'small.txt'), 0o4755);
  await run(['setfattr', '-n', 'user.small', '-v', 'value', join(dir, 'text.txt')]);
  await run(['setfattr', '-n', 'user.large', '-v', '0x' + 'ab'.repeat(3000), join(dir, 'random.bin')]);
  await run(['setfattr', '-n', 'trusted.t', '-v', 'tv', join(dir, 'a')]);
  for (let i = 0; i < 8; i++) await run(['setfattr', '-n', `user.k${i}`, '-v', `v${i}`, join(dir, 'a/b')]);
  utimesSync(join(dir, 'empty'), 1_000_000, 1_000_000);
}

const VARIANTS: [string, string[]][] = [
  ['plain', ['-comp', 'gzip', '-noI', '-noD', '-noF', '-noX', '-b', '4096']],
  ['gzip', ['-comp', 'gzip', '-b', '4096']],
  ['zstd', ['-comp', 'zstd', '-b', '16384']],
  ['xz', ['-comp', 'xz', '-b', '8192']],
  ['lz4', ['-comp', 'lz4', '-b', '65536']],
  ['lzo', ['-comp', 'lzo']],
];

interface Region {
  name: string;
  start: number;
  end: number;
}

/** The byte ranges of an image's structures, from its superblock and table indexes. */
function regionsOf(img: Buffer): Region[] {
  const u64 = (o: number): number => Number(img.readBigUInt64LE(o));
  const NONE = 0xffff_ffff_ffff_ffffn;
  const opt = (o: number): number | undefined => (img.readBigUInt64LE(o) === NONE ? undefined : u64(o));
  const bytesUsed = u64(40);
  const idTable = u64(48);
  const xattrIds = opt(56);
  const inodeStart = u64(64);
  const dirStart = u64(72);
  const fragTable = opt(80);
  const exportTable = opt(88);
  // Each table's metadata blocks sit just before its index; the first index entry points at them.
  const tableStarts = [u64(idTable)];
  if (fragTable !== undefined && img.readUInt32LE(16) > 0) tableStarts.push(u64(fragTable));
  if (exportTable !== undefined) tableStarts.push(u64(exportTable));
  let xattr: Region | undefined;
  if (xattrIds !== undefined) {
    const kvStart = u64(xattrIds);
    const ids = img.readUInt32LE(xattrIds + 8);
    xattr = { name: 'xattr', start: kvStart, end: xattrIds + 16 + 8 * Math.ceil((ids * 16) / 8192) };
    tableStarts.push(kvStart);
  }
  const dirEnd = Math.min(...tableStarts);
  const out: Region[] = [
    { name: 'superblock', start: 0, end: 96 },
    { name: 'data', start: 96, end: inodeStart },
    { name: 'inodes', start: inodeStart, end: dirStart },
    { name: 'directories', start: dirStart, end: dirEnd },
    { name: 'tables', start: dirEnd, end: bytesUsed },
  ];
  if (xattr) out.push(xattr);
  return out.filter((r) => r.end > r.start);
}

interface Base {
  name: string;
  bytes: Buffer;
  regions: Region[];
}

// ---- mutations --------------------------------------------------------------------------------

const INTERESTING_32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x1fff, 0x2000, 0xffff, 0x10000, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];

/** Mutate a copy of `base` (1-4 edits in one region; sometimes a truncation); returns what was done. */
function mutate(base: Base, rand: Prng): { bytes: Buffer; what: string[] } {
  let b = Buffer.from(base.bytes);
  const what: string[] = [];
  // Weighted: structures more often than bulk data.
  const weights: Record<string, number> = { superblock: 2, data: 2, inodes: 3, directories: 3, tables: 2, xattr: 2 };
  const pool = base.regions.flatMap((r) => Array<Region>(weights[r.name] ?? 1).fill(r));
  const region = pool[rand.below(pool.length)]!;
  const edits = 1 + rand.below(4);
  for (let e = 0; e < edits; e++) {
    const span = region.end - region.start;
    const at = region.start + rand.below(span);
    const kind = rand.below(region.name === 'superblock' ? 5 : 7);
    if (kind === 0) {
      b[at] = b[at]! ^ (1 << rand.below(8));
      what.push(`${region.name}: flip bit at ${at}`);
    } else if (kind === 1) {
      b[at] = rand.u32() & 0xff;
      what.push(`${region.name}: random byte at ${at}`);
    } else if (kind === 2 || kind === 3) {
      const o = Math.min(region.end - 4, region.start + ((at - region.start) & ~3));
      if (o < region.start) continue;
      const v = kind === 2 ? INTERESTING_32[rand.below(INTERESTING_32.length)]! : rand.u32();
      b.writeUInt32LE(v >>> 0, o);
      what.push(`${region.name}: u32 ${v} at ${o}`);
    } else if (kind === 4) {
      const o = Math.min(region.end - 2, region.start + ((at - region.start) & ~1));
      if (o < region.start) continue;
      const v = [0, 1, 0x7fff, 0x8000, 0xffff, 0x1fff, 0x2000][rand.below(7)]!;
      b.writeUInt16LE(v, o);
      what.push(`${region.name}: u16 ${v} at ${o}`);
    } else if (kind === 5) {
      // A metadata block header (every 8 KiB + 2 of a table): length / uncompressed bit.
      const o = region.start + (8194 * rand.below(Math.max(1, Math.floor(span / 8194))));
      if (o + 2 > region.end) continue;
      const v = [0x8000, 0x0000, 0xffff, 0x9fff, 0xa000, b.readUInt16LE(o) ^ 0x8000][rand.below(6)]!;
      b.writeUInt16LE(v, o);
      what.push(`${region.name}: metadata header ${v.toString(16)} at ${o}`);
    } else {
      // Copy a run from elsewhere in the region: plausible structures in the wrong place.
      const len = 8 + rand.below(56);
      const from = region.start + rand.below(span);
      b.copy(b, at, from, Math.min(from + len, region.end));
      what.push(`${region.name}: copy ${len} bytes ${from} -> ${at}`);
    }
  }
  if (rand.below(25) === 0) {
    const cut = 96 + rand.below(b.length - 96);
    b = b.subarray(0, cut);
    what.push(`truncated to ${cut}`);
  }
  return { bytes: b, what };
}

// ---- one case -----------------------------------------------------------------------------------

type Kind = 'oci' | 'sqfs';

interface CaseStats {
  refused: boolean;
  errnos: Record<string, number>;
  hwmKiB: number;
  ms: number;
}

interface Lane {
  dir: string;
  layout: string;
}

const SKIP = { skipPrefixes: [SENTINEL], maxFileBytes: 4 << 20, maxEntries: 20_000, maxDepth: 48 };

async function runCase(id: number, kind: Kind, base: Base, bytes: Buffer, lane: Lane, sentinel: { file: string; rootHash: string }, problems: string[]): Promise<CaseStats> {
  const t0 = Date.now();
  const stats: CaseStats = { refused: false, errnos: {}, hwmKiB: 0, ms: 0 };
  const label = `case ${id} (${kind}, ${base.name})`;
  const fail = (m: string): void => {
    problems.push(`${label}: ${m}`);
  };
  const caseDir = join(lane.dir, `c${id}`);
  const mp = join(caseDir, 'mp');
  const runDir = join(caseDir, 'run');
  mkdirSync(mp, { recursive: true });
  const image = join(caseDir, 'image.sqfs');
  writeFileSync(image, bytes);

  let mountArgs: string[];
  if (kind === 'oci') {
    await makeLayout(lane.layout, `c${id}`, [{ file: image }, sentinel]);
    mountArgs = ['mount', '--allow-missing-verity', '--backend', 'fuse', '--metadir', runDir, `${lane.layout}:c${id}`, mp];
  } else {
    // Every other case with read worker threads: a decoder failing in a worker must not hurt either.
    mountArgs = ['sqfs', 'mount', '--log', join(caseDir, 'server.log'), '--read-workers', id % 2 === 0 ? '2' : '0', image, mp];
  }
  const phase = (name: string): void => {
    if (process.env.FUZZ_MOUNT_DEBUG) process.stderr.write(`# ${label} ${name} at ${Date.now() - t0} ms\n`);
  };
  phase('layout');
  const m = await atomfs(mountArgs, { timeoutMs: 60_000 });
  phase('mount');
  if (m.status !== 0) {
    stats.refused = true;
    try {
      assertOneLineError(m, 'refused mount');
    } catch (err) {
      fail((err as Error).message);
    }
    if (mountsUnder(caseDir).length > 0) fail(`refused, but left mounts ${mountsUnder(caseDir).join(', ')}`);
    if (serversUnder(caseDir).length > 0) fail(`refused, but left servers ${serversUnder(caseDir).join(', ')}`);
    if (kind === 'oci' && existsSync(metadirOf(runDir, mp))) fail('refused, but left its metadir');
    stats.ms = Date.now() - t0;
    return stats;
  }
  const pid = kind === 'oci' ? readRecord(runDir, mp)?.serverPid : sqfsServerPid(mp);
  if (pid === undefined || !alive(pid)) {
    fail(`mounted but no live server (pid ${pid})`);
    return stats;
  }

  // The whole tree, three ways, each bounded in time.
  const found = await findAll(mp, 60_000);
  phase('find');
  if (found.hang) fail(`find hung: ${found.hang}`);
  for (const l of unexpectedToolErrors(found.stderr)) fail(`find: ${l}`);
  const w = await walkInWorker(mp, SKIP, 60_000, () => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  if (w.hang || !w.summary) fail(`walk hung or died: ${w.hang}`);
  else {
    stats.errnos = w.summary.errors;
    for (const code of Object.keys(w.summary.errors)) if (!BENIGN_ERRNOS.has(code)) fail(`walk: unexpected ${code}: ${w.summary.samples.filter((s) => s.endsWith(code)).slice(0, 3).join('; ')}`);
  }
  phase('walk');
  const xa = await getfattrAll(mp, 60_000);
  phase('getfattr');
  if (xa.hang) fail(`getfattr hung: ${xa.hang}`);
  for (const l of unexpectedToolErrors(xa.stderr)) fail(`getfattr: ${l}`);

  // Still alive and still serving.
  if (!alive(pid)) fail('server died during the walk');
  else {
    stats.hwmKiB = statusKiB(pid, 'VmHWM') ?? 0;
    if (stats.hwmKiB > HWM_LIMIT_KIB) fail(`server peak RSS ${stats.hwmKiB} KiB > ${HWM_LIMIT_KIB} KiB`);
  }
  const sf = await runBounded(['stat', '-f', '-c', '%T', mp]);
  if (sf.status !== 0) fail(`statfs after the walk: ${describe(sf)}`);
  const fresh = await runBounded(['stat', join(mp, `fresh-name-${id}`)]);
  if (fresh.status === 0 || unexpectedToolErrors(fresh.stderr.toString()).length > 0) fail(`lookup of a fresh name after the walk: ${describe(fresh)}`);
  if (kind === 'oci') {
    // Never read before (the walker skips it): lookup, open and read all go to the server now.
    const cat = await runBounded(['cat', join(mp, SENTINEL)]);
    if (cat.status !== 0 || !cat.stdout.equals(SENTINEL_BYTES)) fail(`verified sentinel file not served intact after the walk: ${describe(cat)}`);
  }

  phase('checks');
  // Clean unmount: server gone, mount gone, metadir gone.
  const u = kind === 'oci' ? await atomfs(['umount', '--metadir', runDir, mp]) : await atomfs(['sqfs', 'umount', mp]);
  if (u.status !== 0) fail(`umount failed: ${describe(u)}`);
  phase('umount');
  if (!(await waitGone(pid, 10_000))) fail(`server ${pid} still running 10 s after umount`);
  phase('server gone');
  if (mountsUnder(caseDir).length > 0) fail(`mounts left after umount: ${mountsUnder(caseDir).join(', ')}`);
  if (kind === 'oci' && existsSync(metadirOf(runDir, mp))) fail('metadir left after umount');
  rmSync(image, { force: true });
  stats.ms = Date.now() - t0;
  return stats;
}

test(`fuzz through live FUSE mounts: ${CASES} mutated images (seed ${SEED})`, { timeout: 30 * 60_000 }, async (t) => {
  const stack = useCleanup(t);
  const work = makeTempDir('fuzz-mount', stack);
  guardNoDebris(stack, work);

  // Base images and the verified sentinel layer.
  const src = join(work, 'src');
  mkdirSync(src);
  await makeTree(src);
  const bases: Base[] = [];
  for (const [name, args] of VARIANTS) {
    const out = join(work, `${name}.sqfs`);
    await mksquashfs(src, out, args);
    const bytes = readFileSync(out);
    bases.push({ name, bytes, regions: regionsOf(bytes) });
  }
  const sentSrc = join(work, 'sentinel-src');
  mkdirSync(sentSrc);
  writeFileSync(join(sentSrc, SENTINEL), SENTINEL_BYTES);
  const sentFile = join(work, 'sentinel.sqfs');
  await mksquashfs(sentSrc, sentFile, ['-comp', 'gzip']);
  const sentinel = { file: sentFile, rootHash: await appendVerity(sentFile) };

  // The unmutated images must serve cleanly (else every "refusal" below would be meaningless).
  const lanes: Lane[] = [];
  for (let l = 0; l < LANES; l++) {
    const dir = join(work, `lane${l}`);
    mkdirSync(dir);
    lanes.push({ dir, layout: join(dir, 'oci') });
  }
  const problems: string[] = [];
  await Promise.all(
    bases.map(async (b, i) => {
      const kind: Kind = i % 2 === 0 ? 'oci' : 'sqfs';
      const id = -1 - i;
      const dir = join(work, `base-${b.name}`);
      mkdirSync(dir);
      const lane: Lane = { dir, layout: join(dir, 'oci') };
      guardCase(stack, join(lane.dir, `c${id}`), kind);
      const s = await runCase(id, kind, b, b.bytes, lane, sentinel, problems);
      assert.equal(s.refused, false, `unmutated ${b.name} image mounts (${kind})`);
      assert.deepEqual(s.errnos, {}, `unmutated ${b.name} image walks without errors (${kind})`);
    }),
  );
  assert.deepEqual(problems, [], 'unmutated images');

  // The fuzz cases, LANES at a time.
  const rand = new Prng(SEED);
  // Mutations are drawn when a lane takes a case: synchronously, in case order, so runs reproduce.
  const takeCase = (id: number) => {
    const kind: Kind = id % 5 < 3 ? 'oci' : 'sqfs';
    const base = bases[id % bases.length]!;
    return { id, kind, base, ...mutate(base, rand) };
  };
  const all: CaseStats[] = [];
  const log: string[] = [];
  let next = 0;
  await Promise.all(
    lanes.map(async (lane) => {
      while (next < CASES && problems.length < 20) {
        const c = takeCase(next++);
        guardCase(stack, join(lane.dir, `c${c.id}`), c.kind);
        const before = problems.length;
        const s = await runCase(c.id, c.kind, c.base, c.bytes, lane, sentinel, problems);
        all.push(s);
        if (problems.length > before) log.push(`case ${c.id} mutations: ${c.what.join('; ')}`);
      }
    }),
  );

  const refused = all.filter((s) => s.refused).length;
  const withErrors = all.filter((s) => !s.refused && Object.keys(s.errnos).length > 0).length;
  const errnos: Record<string, number> = {};
  for (const s of all) for (const [k, v] of Object.entries(s.errnos)) errnos[k] = (errnos[k] ?? 0) + v;
  const maxHwm = Math.max(0, ...all.map((s) => s.hwmKiB));
  const slowest = Math.max(0, ...all.map((s) => s.ms));
  t.diagnostic(
    `${all.length} cases: ${refused} refused at mount, ${all.length - refused - withErrors} served cleanly, ${withErrors} served with errors ` +
      `${JSON.stringify(errnos)}; server peak RSS max ${(maxHwm / 1024).toFixed(0)} MiB; slowest case ${slowest} ms`,
  );
  assert.deepEqual(problems, [], `problems (seed ${SEED}):\n${log.join('\n')}`);
  assert.equal(all.length, CASES, 'every case ran');
  // The mutations must really break things, or this test could not fail.
  assert.ok(refused > CASES / 20, `some mutated images are refused (${refused})`);
  assert.ok(withErrors > CASES / 20, `some mutated images serve with errors (${withErrors})`);
});

/** Cleanup of one case's mount (registered before it is made), whatever happened. */
function guardCase(stack: ReturnType<typeof useCleanup>, caseDir: string, kind: Kind): void {
  const mp = join(caseDir, 'mp');
  if (kind === 'oci') guardOciMount(stack, join(caseDir, 'run'), mp);
  else guardSqfsMount(stack, mp);
}
