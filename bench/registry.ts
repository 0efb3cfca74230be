/**
 * Issue 19 benchmark: a Debian minbase image (test/lib/debian-image.ts, 3 stacker layers, ~84 MiB)
 * served by a loopback docker-registry (pushed with skopeo), read lazily by atomfs:
 *   - cold `atomfs ls docker://… /` (the whole tree, recursive, no mount) from an empty blob cache;
 *   - cold mount + `ls MP` + first file read (`cat MP/etc/os-release`) from an empty cache;
 *   - bytes fetched for a typical start (`chroot MP /bin/true`) vs the image's size;
 *   - `atomfs pull` of the whole image vs `skopeo copy docker://… oci:DIR` (throughput).
 * Page cache dropped before each run; medians of RUNS (default 3). Needs root.
 *
 *   node bench/dist/registry.js            (RUNS=5 for more runs)
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { DebianImage } from '../test/lib/debian-image.js';
import { DATA_DIR, dropCaches, median } from './lib.js';
import { ATOMFS, BenchError, clearStaleMount, isMounted, requireTools, sh, timeShell } from './proc.js';

async function loadDebianImage(): Promise<DebianImage> {
  const mod = (await import(new URL('../../test/dist/lib/debian-image.js', import.meta.url).href)) as { debianImage: () => Promise<DebianImage> };
  return mod.debianImage();
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Bytes of a cache's blobs that are present (chunks marked in the maps), and the blobs' sizes. */
function cacheFill(cacheDir: string): { present: number; allocated: number } {
  const dir = join(cacheDir, 'blobs', 'sha256');
  let present = 0;
  let allocated = 0;
  for (const f of readdirSync(dir)) {
    if (f.endsWith('.chunks')) continue;
    const st = statSync(join(dir, f));
    allocated += st.blocks * 512;
    const map = readFileSync(join(dir, `${f}.chunks`));
    // The map has one byte per chunk: its length gives the chunk size.
    const CHUNK = map.length > 1 ? 2 ** Math.ceil(Math.log2(st.size / map.length)) : st.size;
    for (let c = 0; c < map.length; c++) if (map[c] === 1) present += Math.min(CHUNK, st.size - c * CHUNK);
  }
  return { present, allocated };
}

export interface RegistryBenchResult {
  imageBytes: number;
  runs: number;
  coldLsSeconds: number;
  coldMountLsCatSeconds: number;
  localMountLsCatSeconds: number;
  chrootTrueFetchedBytes: number;
  chrootTrueSeconds: number;
  pullSeconds: number;
  skopeoCopySeconds: number;
}

export async function benchRegistry(runs = Number(process.env.RUNS ?? 3)): Promise<RegistryBenchResult> {
  if (process.getuid?.() !== 0) throw new BenchError('the registry benchmark needs root (mounts, chroot, drop_caches)');
  requireTools(['docker-registry', 'skopeo', 'chroot']);
  const img = await loadDebianImage();
  const imageBytes = img.layers.reduce((n, l) => n + statSync(l).size, 0);
  const work = join(DATA_DIR, 'registry-run');
  const mp = join(work, 'mp');
  clearStaleMount(mp);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(mp, { recursive: true });
  const port = await freePort();
  const config = join(work, 'config.yml');
  writeFileSync(config, `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(work, 'storage')}\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const registry = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  const runDir = join(work, 'run');
  const env = (cache: string) => ({ ...process.env, ATOMFS_CACHE_DIR: cache, ATOMFS_TEST_RUN_DIR: runDir });
  const atomfs = (args: string[], cache: string, what: string): number => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [ATOMFS, ...args], { env: env(cache), stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 300_000 });
    if (r.status !== 0) throw new BenchError(`${what}: atomfs ${args.join(' ')}: ${r.stderr.trim()}`);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  try {
    for (let i = 0; ; i++) {
      if (spawnSync('curl', ['-sf', `http://127.0.0.1:${port}/v2/`]).status === 0) break;
      if (i > 300) throw new BenchError('docker-registry did not start');
      spawnSync('sleep', ['0.05']);
    }
    const ref = `docker://127.0.0.1:${port}/bench/debian:v1`;
    sh(['skopeo', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${img.ociDir}:${img.tag}`, ref], 'push the image');
    const caches = join(work, 'caches');
    const r: Record<string, number[]> = { ls: [], mountLsCat: [], localMountLsCat: [], chroot: [], fetched: [], pull: [], skopeo: [] };
    for (let i = 0; i < runs; i++) {
      // Cold ls of the whole tree, no mount.
      rmSync(caches, { recursive: true, force: true });
      dropCaches();
      r.ls!.push(atomfs(['ls', '--insecure', ref, '/'], join(caches, 'ls'), 'cold ls'));

      // Cold mount + ls + first file read.
      dropCaches();
      const cache = join(caches, 'mount');
      r.mountLsCat!.push(
        timeShell(`ATOMFS_CACHE_DIR=${cache} ATOMFS_TEST_RUN_DIR=${runDir} ${process.execPath} ${ATOMFS} mount --insecure ${ref} ${mp} && ls ${mp} >/dev/null && cat ${mp}/etc/os-release >/dev/null`, 'cold mount+ls+cat').seconds,
      );
      // A typical start on it: what does it fetch?
      const t0 = process.hrtime.bigint();
      sh(['chroot', mp, '/bin/true'], 'chroot /bin/true');
      r.chroot!.push(Number(process.hrtime.bigint() - t0) / 1e9);
      r.fetched!.push(cacheFill(cache).present);
      atomfs(['umount', mp], cache, 'umount');

      // The same from the local layout, for reference.
      dropCaches();
      r.localMountLsCat!.push(
        timeShell(`ATOMFS_TEST_RUN_DIR=${runDir} ${process.execPath} ${ATOMFS} mount --backend fuse ${img.ociDir}:${img.tag} ${mp} && ls ${mp} >/dev/null && cat ${mp}/etc/os-release >/dev/null`, 'local mount+ls+cat').seconds,
      );
      atomfs(['umount', mp], cache, 'umount');

      // Whole image: pull into an empty cache vs skopeo copy to a layout.
      rmSync(caches, { recursive: true, force: true });
      dropCaches();
      r.pull!.push(atomfs(['pull', '--insecure', ref], join(caches, 'pull'), 'pull'));
      const dest = join(work, 'copy');
      rmSync(dest, { recursive: true, force: true });
      dropCaches();
      r.skopeo!.push(timeShell(`skopeo copy --quiet --src-tls-verify=false ${ref} oci:${dest}:v1`, 'skopeo copy').seconds);
    }
    return {
      imageBytes,
      runs,
      coldLsSeconds: median(r.ls!),
      coldMountLsCatSeconds: median(r.mountLsCat!),
      localMountLsCatSeconds: median(r.localMountLsCat!),
      chrootTrueFetchedBytes: median(r.fetched!),
      chrootTrueSeconds: median(r.chroot!),
      pullSeconds: median(r.pull!),
      skopeoCopySeconds: median(r.skopeo!),
    };
  } finally {
    if (isMounted(mp)) spawnSync(process.execPath, [ATOMFS, 'umount', mp], { env: { ...process.env, ATOMFS_TEST_RUN_DIR: runDir } });
    registry.kill('SIGKILL');
    // The pushed copy, the caches and the skopeo copy: nothing worth keeping between runs.
    if (!isMounted(mp)) rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const res = await benchRegistry();
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  process.stdout.write(
    [
      `image: ${mib(res.imageBytes)} MiB in 3 layers, loopback docker-registry, medians of ${res.runs} runs, page cache dropped`,
      `cold atomfs ls docker://… / (whole tree, no mount): ${res.coldLsSeconds.toFixed(3)} s`,
      `cold mount docker://… + ls + cat /etc/os-release:  ${res.coldMountLsCatSeconds.toFixed(3)} s (local layout: ${res.localMountLsCatSeconds.toFixed(3)} s)`,
      `chroot MP /bin/true after that: ${res.chrootTrueSeconds.toFixed(3)} s; fetched in all: ${mib(res.chrootTrueFetchedBytes)} MiB of ${mib(res.imageBytes)} MiB (${((100 * res.chrootTrueFetchedBytes) / res.imageBytes).toFixed(1)}%)`,
      `whole image: atomfs pull ${res.pullSeconds.toFixed(3)} s (${mib(res.imageBytes / res.pullSeconds)} MiB/s), skopeo copy ${res.skopeoCopySeconds.toFixed(3)} s (${mib(res.imageBytes / res.skopeoCopySeconds)} MiB/s)`,
      '',
    ].join('\n'),
  );
  process.stdout.write(JSON.stringify(res) + '\n');
}
