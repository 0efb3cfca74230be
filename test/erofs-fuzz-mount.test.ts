/**
 * Issue 18, hostile erofs images through LIVE FUSE mounts: real mkfs.erofs images (lz4hc with
 * ztailpacking, chunk-based, legacy big pclusters; without the superblock checksum, so mutations
 * of its fields reach the reader) are mutated with a fixed seed and mounted with
 * `atomfs erofs mount`. Each case: the mount is refused with one "Error: " line, or it serves;
 * then a walker (lstat, readdir, readlink, read every file), `find` and `getfattr -R` finish in
 * time with only EIO-like errors, the server is alive and answers statfs, its peak RSS stays
 * bounded, and umount ends it. FUZZ_EROFS_MOUNT_CASES / FUZZ_EROFS_MOUNT_SEED make longer runs.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateTree, isMounted, makeTempDir, processCleanup, Prng, useCleanup } from './lib/index.js';
import { alive, assertOneLineError, atomfs, BENIGN_ERRNOS, describe, findAll, getfattrAll, guardSqfsMount, statusKiB, unexpectedToolErrors, waitGone, walkInChild } from './reliability-common.js';
import { dropLongNames, mkfsErofs } from './erofs-images.js';

const CASES = Number(process.env.FUZZ_EROFS_MOUNT_CASES ?? 18);
const SEED = Number(process.env.FUZZ_EROFS_MOUNT_SEED ?? 20261207);
const HWM_LIMIT_KIB = 320 * 1024;

let work: string;
const images: { name: string; buf: Buffer }[] = [];

before(async () => {
  work = makeTempDir('erofs-fuzzm', processCleanup);
  const src = join(work, 'src');
  await generateTree(src, { medium: false });
  dropLongNames(src);
  for (const [name, opts] of [
    ['lz4hc-tail', ['-zlz4hc', '-Eztailpacking', '-Enosbcrc']],
    ['chunks', ['--chunksize=8192', '-Enosbcrc']],
    ['legacy-big', ['-zlz4', '-Elegacy-compress', '-C16384', '-Enosbcrc']],
  ] as const) {
    const out = await mkfsErofs(src, join(work, `${name}.erofs`), [...opts]);
    images.push({ name, buf: readFileSync(out) });
  }
});
after(() => processCleanup.run());

/** The detached server of a mount: its command line is `... erofs mount --foreground IMAGE MP`. */
function serverPid(mp: string): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (argv.includes('erofs') && argv.includes('--foreground') && argv.includes(mp)) return Number(name);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

test(`fuzz: ${CASES} mutated erofs images through live FUSE mounts`, { timeout: 20 * 60_000 }, async (t) => {
  const stack = useCleanup(t);
  const rng = new Prng(SEED);
  let refused = 0;
  let served = 0;
  let eio = 0;
  for (let i = 0; i < CASES; i++) {
    const { name, buf } = images[i % images.length]!;
    const b = Buffer.from(buf);
    const flips = 1 + rng.below(8);
    for (let f = 0; f < flips; f++) {
      // A third each: the superblock, the first 64 KiB (inodes, directories, indexes), anywhere.
      const r = rng.below(3);
      const pos = r === 0 ? 1024 + rng.below(128) : r === 1 ? 4096 + rng.below(Math.min(65536, b.length - 4096)) : rng.below(b.length);
      b[pos] = rng.below(256);
    }
    const dir = join(work, `case-${i}`);
    const mp = join(dir, 'mp');
    mkdirSync(mp, { recursive: true });
    const image = join(dir, `${name}.erofs`);
    writeFileSync(image, b);
    const what = `case ${i} (${name}, seed ${SEED})`;
    guardSqfsMount(stack, mp);
    const m = await atomfs(['erofs', 'mount', image, mp]);
    if (m.status !== 0) {
      assertOneLineError(m, `${what}: mount`);
      assert.ok(!isMounted(mp), `${what}: a refused mount leaves no mount`);
      refused++;
      continue;
    }
    served++;
    const pid = serverPid(mp);
    assert.ok(pid !== undefined && alive(pid), `${what}: server running`);
    const w = await walkInChild(mp, { maxFileBytes: 4 << 20 }, 60_000);
    assert.equal(w.hang, undefined, `${what}: walk`);
    for (const code of Object.keys(w.summary!.errors)) assert.ok(BENIGN_ERRNOS.has(code), `${what}: walk error ${code}: ${w.summary!.samples.join('; ')}`);
    eio += w.summary!.errors.EIO ?? 0;
    const fnd = await findAll(mp);
    assert.equal(fnd.hang, undefined, `${what}: find`);
    assert.deepEqual(unexpectedToolErrors(fnd.stderr), [], `${what}: find`);
    const gf = await getfattrAll(mp);
    assert.equal(gf.hang, undefined, `${what}: getfattr`);
    assert.ok(alive(pid!), `${what}: the server survived`);
    assert.ok(statfsSync(mp).bsize > 0, `${what}: statfs answers`);
    const hwm = statusKiB(pid!, 'VmHWM') ?? 0;
    assert.ok(hwm < HWM_LIMIT_KIB, `${what}: server peak RSS ${hwm} KiB`);
    const u = await atomfs(['erofs', 'umount', mp]);
    assert.equal(u.status, 0, `${what}: umount: ${describe(u)}`);
    assert.ok(await waitGone(pid!, 10_000), `${what}: the server exited`);
  }
  t.diagnostic(`${CASES} cases: ${refused} refused, ${served} served (${eio} EIO replies to the walker)`);
  assert.ok(refused > 0 && served > 0, 'both outcomes happen (the test can fail either way)');
});
