/**
 * Issue 7, load: 16 parallel readers for SOAK_SECONDS (default 30; scripts/soak.sh runs longer)
 * over a three-layer stacker image (dm-verity on every layer, whiteouts, replaced files) served by
 * the atomfs FUSE server. Truth is the kernel: loop-mounted squashfs layers under a kernel
 * overlayfs with Go atomfs's options. Checked: the whole merged tree has the same files and
 * sha256s as the kernel's; every read during the run (whole files and random ranges, O_DIRECT so
 * the server answers each one) equals the kernel's bytes; listings and lstat agree; the server's
 * RSS levels off within its cache bounds (sampled every 500 ms) and it holds as many fds at the
 * end as at the start.
 */
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { makeContent, makeTempDir, run, useCleanup, withLoopMount, withOverlayMount } from './lib/index.js';
import {
  alive,
  appendVerity,
  cpuSeconds,
  atomfs,
  describe,
  fdCount,
  guardNoDebris,
  guardOciMount,
  killQuietly,
  makeLayout,
  mksquashfs,
  mountsUnder,
  readRecord,
  serversUnder,
  statusKiB,
  waitGone,
  walkInWorker,
} from './reliability-common.js';
import type { ReaderFile, ReaderJob, ReaderStats } from './reliability-reader.js';
import { walk } from './reliability-walk.js';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 30);
const READERS = Number(process.env.SOAK_READERS ?? 16);
/**
 * Caches of a 3-layer mount: per layer 8 MiB metadata + 32 MiB data (squashfs) + 4 MiB hashes
 * and 16 blocks (verity), 16 MiB of merged listings: ~150 MiB, plus node and its threads.
 */
const RSS_LIMIT_MIB = Number(process.env.SOAK_RSS_MIB ?? 400);
/** Growth allowed between the first and the second half of the run (caches are full by then). */
const RSS_GROWTH_MIB = Number(process.env.SOAK_RSS_GROWTH_MIB ?? 48);

async function buildTrees(work: string): Promise<{ base: string; mid: string; top: string }> {
  const base = join(work, 'src-base');
  const mid = join(work, 'src-mid');
  const top = join(work, 'src-top');
  for (const d of ['usr/lib/data', 'usr/share/text', 'bin', 'etc']) mkdirSync(join(base, d), { recursive: true });
  for (let i = 0; i < 24; i++) writeFileSync(join(base, 'usr/lib/data', `d${i}`), makeContent('mixed', 1536 * 1024 + i * 4099, 100 + i));
  for (let i = 0; i < 100; i++) writeFileSync(join(base, 'usr/share/text', `t${i}`), makeContent('text', 30_000 + i * 37, 300 + i));
  writeFileSync(join(base, 'bin/tool'), makeContent('random', 3 << 20, 5));
  for (let i = 0; i < 10; i++) writeFileSync(join(base, 'etc', `conf${i}`), `base conf ${i}\n`);
  symlinkSync('../usr/lib/data/d1', join(base, 'bin/d1-link'));
  linkSync(join(base, 'etc/conf1'), join(base, 'etc/conf1.hardlink'));

  for (const d of ['usr/lib/data', 'usr/share/text', 'opt/mid']) mkdirSync(join(mid, d), { recursive: true });
  for (let i = 0; i < 6; i++) writeFileSync(join(mid, 'usr/lib/data', `d${i}`), makeContent('random', 700_000 + i * 1000, 500 + i));
  await run(['mknod', join(mid, 'usr/share/text/t5'), 'c', '0', '0']); // whiteout
  for (let i = 0; i < 20; i++) writeFileSync(join(mid, 'opt/mid', `m${i}`), makeContent('random', 500_000 + i, 600 + i));

  for (const d of ['etc', 'top', 'usr/lib/data']) mkdirSync(join(top, d), { recursive: true });
  writeFileSync(join(top, 'etc/conf0'), 'top conf 0\n');
  await run(['mknod', join(top, 'usr/lib/data/d7'), 'c', '0', '0']); // whiteout
  for (let i = 0; i < 10; i++) writeFileSync(join(top, 'top', `t${i}`), makeContent('mixed', 1 << 20, 700 + i));
  return { base, mid, top };
}

function startReader(job: ReaderJob): { done: Promise<ReaderStats>; worker: Worker } {
  const worker = new Worker(new URL('./reliability-reader.js', import.meta.url), { workerData: job });
  const done = new Promise<ReaderStats>((resolve, reject) => {
    worker.once('message', (m: ReaderStats) => resolve(m));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`reader exited ${code} without a result`)));
  });
  return { done, worker };
}

test(`load: ${READERS} readers for ${SECONDS} s on a 3-layer verified image read the kernel overlay's bytes; RSS bounded, no fd leak`, { timeout: (SECONDS + 300) * 1000 }, async (t) => {
  const stack = useCleanup(t);
  const work = makeTempDir('rel-load', stack);
  guardNoDebris(stack, work);
  const src = await buildTrees(work);
  const layers = [];
  for (const [name, dir, comp] of [['base', src.base, 'gzip'], ['mid', src.mid, 'zstd'], ['top', src.top, 'lz4']] as const) {
    const file = join(work, `${name}.sqfs`);
    await mksquashfs(dir, file, ['-comp', comp]);
    layers.push({ file, rootHash: await appendVerity(file) });
  }
  await makeLayout(join(work, 'oci'), 'img', layers);
  const mp = join(work, 'mp');
  mkdirSync(mp);
  const runDir = join(work, 'run');
  guardOciMount(stack, runDir, mp);
  const m = await atomfs(['mount', '--backend', 'fuse', '--metadir', runDir, `${join(work, 'oci')}:img`, mp]);
  assert.equal(m.status, 0, describe(m));
  const pid = readRecord(runDir, mp)!.serverPid!;
  assert.ok(alive(pid));

  const [lb, lm, lt] = layers.map((l) => l.file) as [string, string, string];
  await withLoopMount(lb, (kb) =>
    withLoopMount(lm, (km) =>
      withLoopMount(lt, (kt) =>
        withOverlayMount(
          [kt, km, kb],
          async (kernel) => {
            // 1. The whole merged tree, once.
            const truth = walk(kernel, { hashes: true, dirPaths: true, maxFileBytes: Number.MAX_SAFE_INTEGER });
            assert.deepEqual(truth.errors, {}, 'kernel overlay readable');
            const ours = await walkInWorker(mp, { hashes: true, dirPaths: true, maxFileBytes: Number.MAX_SAFE_INTEGER }, 120_000, () => killQuietly(pid));
            assert.ok(ours.summary, `full walk: ${ours.hang}`);
            assert.deepEqual(ours.summary.errors, {}, 'no errors');
            assert.deepEqual(ours.summary.hashes, truth.hashes, 'same files, same sha256 as the kernel overlay');
            assert.deepEqual(ours.summary.dirPaths!.sort(), truth.dirPaths!.sort(), 'same directories');
            assert.equal(ours.summary.symlinks, truth.symlinks, 'same symlinks');
            assert.equal(truth.hashes!['/usr/share/text/t5'], undefined, 'the whiteouts are in effect');

            // 2. The load.
            const files: ReaderFile[] = Object.entries(truth.hashes!).map(([rel, sha256]) => ({ rel, sha256, size: 0 }));
            for (const f of files) f.size = statSync(join(kernel, f.rel)).size;
            const fd0 = fdCount(pid);
            const cpu0 = cpuSeconds(pid);
            const rss0 = statusKiB(pid, 'VmRSS')!;
            const endAt = Date.now() + SECONDS * 1000;
            const readers = Array.from({ length: READERS }, (_, i) =>
              startReader({ fuseRoot: mp, kernelRoot: kernel, files, dirs: truth.dirPaths!, endAt, seed: 1000 + i }),
            );
            stack.add('stop readers', () => readers.forEach((r) => void r.worker.terminate()));
            const samples: { t: number; kib: number }[] = [];
            const t0 = Date.now();
            while (Date.now() < endAt) {
              await new Promise((r) => setTimeout(r, 500));
              const kib = statusKiB(pid, 'VmRSS');
              assert.ok(kib !== undefined, 'the server is alive during the load');
              samples.push({ t: Date.now() - t0, kib });
            }
            // A reader stuck in a request would hang here: give them a bounded grace period.
            let timer: NodeJS.Timeout | undefined;
            const stats = await Promise.race([
              Promise.all(readers.map((r) => r.done)),
              new Promise<never>((_, reject) => {
                timer = setTimeout(() => {
                  killQuietly(pid);
                  reject(new Error('readers did not finish within 60 s after the end of the run (a hung request?)'));
                }, 60_000);
              }),
            ]).finally(() => clearTimeout(timer));
            const fd1 = fdCount(pid);
            const cpu = cpuSeconds(pid) - cpu0;

            const total = stats.reduce(
              (a, s) => ({ ops: a.ops + s.ops, full: a.full + s.fullReads, range: a.range + s.rangeReads, lists: a.lists + s.listings, bytes: a.bytes + s.bytes }),
              { ops: 0, full: 0, range: 0, lists: 0, bytes: 0 },
            );
            const mismatches = stats.flatMap((s) => s.mismatches);
            const errors: Record<string, number> = {};
            for (const s of stats) for (const [k, v] of Object.entries(s.errors)) errors[k] = (errors[k] ?? 0) + v;
            const half = samples.filter((s) => s.t <= (SECONDS * 1000) / 2);
            const firstMax = Math.max(rss0, ...half.map((s) => s.kib));
            const allMax = Math.max(rss0, ...samples.map((s) => s.kib));
            const hwm = statusKiB(pid, 'VmHWM')!;
            const mib = (k: number) => (k / 1024).toFixed(0);
            t.diagnostic(
              `${total.ops} ops (${total.full} whole files, ${total.range} ranges, ${total.lists} listings), ` +
                `${(total.bytes / 1048576).toFixed(0)} MiB read in ${SECONDS} s (server CPU ${cpu.toFixed(1)} s); server RSS ${mib(rss0)} MiB at start, ` +
                `max ${mib(firstMax)} MiB in the first half, ${mib(allMax)} MiB overall, peak (VmHWM) ${mib(hwm)} MiB; fds ${fd0} -> ${fd1}`,
            );
            assert.deepEqual(mismatches, [], 'every read equals the kernel overlay');
            assert.deepEqual(errors, {}, 'no errors');
            assert.ok(total.full > READERS && total.range > READERS && total.lists > 0, 'every kind of operation ran');
            assert.ok(total.bytes > 64 << 20, 'enough data went through the server to cycle its caches');
            // O_DIRECT: the server answered the reads, not the page cache.
            assert.ok(cpu > SECONDS / 10, `the server worked for the readers (${cpu.toFixed(1)} CPU s)`);
            assert.ok(hwm < RSS_LIMIT_MIB * 1024, `server peak RSS ${mib(hwm)} MiB < ${RSS_LIMIT_MIB} MiB`);
            assert.ok(allMax - firstMax < RSS_GROWTH_MIB * 1024, `RSS levels off: +${mib(allMax - firstMax)} MiB in the second half (< ${RSS_GROWTH_MIB})`);
            assert.equal(fd1, fd0, 'the server holds no more fds after the load than before');
          },
          { userxattr: true },
        ),
      ),
    ),
  );

  assert.ok(alive(pid), 'server alive after the load');
  const u = await atomfs(['umount', '--metadir', runDir, mp]);
  assert.equal(u.status, 0, describe(u));
  assert.ok(await waitGone(pid, 10_000), 'server ended');
  assert.deepEqual(mountsUnder(work), []);
  assert.deepEqual(serversUnder(work), []);
});
