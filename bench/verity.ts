/**
 * Issue 5 benchmark: dm-verity in userspace on the standard 256 MiB zstd layer with veritysetup
 * data appended, in one run:
 * (The standard image holds a 256 MiB file; compressed, the layer file is ~120 MiB.)
 *   - whole-layer verification, MB/s of the layer file: `atomfs verify OCIDIR:TAG` and
 *     verifyAll in-process next to `veritysetup verify` (goal: >= 0.9x veritysetup), on this
 *     layer and on the ~390 MiB layer of the 1 GiB image of the RSS benchmark: a Node command
 *     pays ~0.15-0.2 s of start-up that a 0.2 s job cannot hide, a larger layer shows the rate;
 *   - sequential `dd bs=1M` of the 256 MiB file through our FUSE mount with verity on (root hash
 *     annotation) and off (same blob, no annotation, --allow-missing-verity --backend fuse)
 *     (goal: on at most 15% slower).
 * Caches dropped before every measurement, a fresh mount for every read, targets interleaved run
 * by run; medians of RUNS (default 3). MB = 10^6 bytes. Needs root (mounts, drop_caches).
 *
 *   node bench/dist/verity.js
 */
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { writeLayout } from '@atomfs/oci';
import { verifyAll } from '@atomfs/verity';
import { DATA_DIR, dropCaches, median, printTable, standardImage, type RatioRow, type Row } from './lib.js';
import { atomfsServerPid, cpuSeconds, isMounted, sh } from './proc.js';
import { gibImage } from './rss.js';

const ATOMFS = new URL('../../bin/atomfs', import.meta.url).pathname;

export class VerityBenchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Where stacker put the verity superblock: the squashfs bytes_used (offset 40) rounded up to 4096. */
function hashOffsetOfBlob(path: string): number {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(8);
    if (readSync(fd, b, 0, 8, 40) !== 8) throw new VerityBenchError(`${path}: too short for a squashfs image`);
    return Math.ceil(Number(b.readBigUInt64LE(0)) / 4096) * 4096;
  } finally {
    closeSync(fd);
  }
}

/** Seconds of wall clock for one run of argv (which must succeed). */
function timeOnce(argv: string[], what: string): number {
  const t0 = process.hrtime.bigint();
  sh(argv, what, 600_000);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

interface VerityLayer {
  blob: string;
  rootHash: string;
  hashOffset: number;
  ociDir: string;
}

/**
 * The standard image with veritysetup data appended, in an OCI layout under two tags: "on"
 * (root hash annotation) and "off" (none). Built once and reused.
 */
export async function verityLayer(): Promise<VerityLayer> {
  const { image } = standardImage();
  const file = join(DATA_DIR, 'std-zstd-verity.sqfs');
  const meta = join(DATA_DIR, 'std-zstd-verity.json');
  const ociDir = join(DATA_DIR, 'verity-oci');
  if (existsSync(meta)) {
    const m = JSON.parse(readFileSync(meta, 'utf8')) as VerityLayer;
    if (existsSync(m.blob) && existsSync(join(m.ociDir, 'index.json'))) return m;
  }
  rmSync(ociDir, { recursive: true, force: true });
  copyFileSync(image, file);
  const hashOffset = statSync(file).size; // mksquashfs pads to 4096: the squashfs ends here
  if (hashOffset % 4096 !== 0) throw new VerityBenchError(`${image}: size ${hashOffset} is not a multiple of 4096`);
  const out = sh(['veritysetup', 'format', file, file, `--hash-offset=${hashOffset}`, `--data-blocks=${hashOffset / 4096}`], 'veritysetup format');
  const rootHash = /Root hash:\s+([0-9a-f]{64})/.exec(out)?.[1];
  if (rootHash === undefined) throw new VerityBenchError(`veritysetup format printed no root hash:\n${out}`);
  await writeLayout(ociDir, { tag: 'on', layers: [{ file, rootHash }] });
  const w = await writeLayout(ociDir, { tag: 'off', layers: [{ file }] });
  rmSync(file); // the layout holds the blob now
  const layer: VerityLayer = { blob: w.layers[0]!.path, rootHash, hashOffset, ociDir };
  writeFileSync(meta, JSON.stringify(layer) + '\n');
  return layer;
}

/** One cold `dd bs=1M` of big.bin through a fresh atomfs mount: MB/s and the server's CPU seconds. */
function ddThroughMount(mountArgs: string[], mp: string, runDir: string): { mbps: number; cpu: number } {
  sh([ATOMFS, 'mount', '--metadir', runDir, ...mountArgs, mp], 'atomfs mount');
  try {
    const file = join(mp, 'big.bin');
    const size = statSync(file).size;
    const pid = atomfsServerPid(runDir);
    dropCaches();
    const cpu0 = cpuSeconds(pid);
    const t = timeOnce(['dd', `if=${file}`, 'of=/dev/null', 'bs=1M'], 'dd');
    return { mbps: size / t / 1e6, cpu: cpuSeconds(pid) - cpu0 };
  } finally {
    spawnSync(ATOMFS, ['umount', '--metadir', runDir, mp], { stdio: 'ignore' });
    if (isMounted(mp)) spawnSync('umount', ['-l', mp], { stdio: 'ignore' });
  }
}

export interface VerityBenchResult {
  /** The verify rows carry their speedup over veritysetup (MB/s ratio). */
  rows: RatioRow[];
  /** atomfs verify MB/s / veritysetup verify MB/s (goal >= 0.9). */
  verifyRatio: number;
  /** verifyAll in-process MB/s / veritysetup verify MB/s. */
  verifyAllRatio: number;
  /** atomfs verify MB/s / veritysetup verify MB/s on the large layer. */
  verifyRatioLarge: number;
  /** dd MB/s with verity / without (goal >= 1/1.15 = 0.87, i.e. at most 15% slower). */
  readRatio: number;
  loadavg: number[];
}

export async function benchVerityDetailed(runs = 3): Promise<VerityBenchResult> {
  const layer = await verityLayer();
  const size = statSync(layer.blob).size;
  const H = layer.hashOffset;
  const work = join(DATA_DIR, 'verity-run');
  rmSync(work, { recursive: true, force: true });
  const mp = join(work, 'mp');
  const runDir = join(work, 'run');
  mkdirSync(mp, { recursive: true });

  const large = await gibImage();
  const largeBlob = large.blobs[0]!;
  const largeRoot = large.rootHashes[0]!;
  const largeSize = statSync(largeBlob).size;
  const largeH = hashOffsetOfBlob(largeBlob);
  const times: Record<string, number[]> = { veritysetup: [], atomfs: [], verifyAll: [], startup: [], largeVeritysetup: [], largeAtomfs: [] };
  const dd: Record<string, number[]> = { on: [], off: [] };
  const cpu: Record<string, number[]> = { on: [], off: [] };
  try {
    for (let i = 0; i < runs; i++) {
      dropCaches();
      times.veritysetup!.push(timeOnce(['veritysetup', 'verify', layer.blob, layer.blob, layer.rootHash, `--hash-offset=${H}`], 'veritysetup verify'));
      dropCaches();
      times.atomfs!.push(timeOnce([ATOMFS, 'verify', `${layer.ociDir}:on`], 'atomfs verify'));
      dropCaches();
      times.largeVeritysetup!.push(timeOnce(['veritysetup', 'verify', largeBlob, largeBlob, largeRoot, `--hash-offset=${largeH}`], 'veritysetup verify'));
      dropCaches();
      times.largeAtomfs!.push(timeOnce([ATOMFS, 'verify', `${large.ociDir}:on`], 'atomfs verify'));
      // The CLI's fixed cost (node start-up and module loading), to read the row above against.
      times.startup!.push(timeOnce([ATOMFS, '--version'], 'atomfs --version'));
      dropCaches();
      const t0 = process.hrtime.bigint();
      await verifyAll(layer.blob, { hashOffset: H, rootHash: layer.rootHash, label: 'bench' });
      times.verifyAll!.push(Number(process.hrtime.bigint() - t0) / 1e9);
      // Alternate which goes first, so slow drifts of background load hit both alike.
      const order = i % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
      for (const which of order) {
        const args = which === 'on' ? [`${layer.ociDir}:on`] : ['--allow-missing-verity', '--backend', 'fuse', `${layer.ociDir}:off`];
        const r = ddThroughMount(args, mp, runDir);
        dd[which]!.push(r.mbps);
        cpu[which]!.push(r.cpu);
      }
    }
  } finally {
    if (isMounted(mp)) spawnSync('umount', ['-l', mp], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  }
  const mbps = (t: number[]): number => size / median(t) / 1e6;
  const wl = `verify ${Math.round(size / 2 ** 20)} MiB layer`;
  const vs = (t: number[]): Record<string, number> => ({ veritysetup: mbps(t) / mbps(times.veritysetup!) });
  const mbpsLarge = (t: number[]): number => largeSize / median(t) / 1e6;
  const wlLarge = `verify ${Math.round(largeSize / 2 ** 20)} MiB layer`;
  const rows: RatioRow[] = [
    { workload: wl, tool: 'veritysetup verify', value: mbps(times.veritysetup!), unit: 'MB/s' },
    { workload: wl, tool: 'atomfs verify OCIDIR:TAG', value: mbps(times.atomfs!), unit: 'MB/s', speedup: vs(times.atomfs!) },
    { workload: wl, tool: 'verifyAll (in-process)', value: mbps(times.verifyAll!), unit: 'MB/s', speedup: vs(times.verifyAll!) },
    { workload: 'CLI start-up', tool: 'atomfs --version', value: median(times.startup!), unit: 's' },
    { workload: wlLarge, tool: 'veritysetup verify', value: mbpsLarge(times.largeVeritysetup!), unit: 'MB/s' },
    {
      workload: wlLarge,
      tool: 'atomfs verify OCIDIR:TAG',
      value: mbpsLarge(times.largeAtomfs!),
      unit: 'MB/s',
      speedup: { veritysetup: mbpsLarge(times.largeAtomfs!) / mbpsLarge(times.largeVeritysetup!) },
    },
    { workload: 'dd bs=1M 256 MiB, one-layer OCI via FUSE', tool: 'atomfs mount, verity on', value: median(dd.on!), unit: 'MB/s' },
    { workload: 'dd bs=1M 256 MiB, one-layer OCI via FUSE', tool: 'atomfs mount --allow-missing-verity, verity off', value: median(dd.off!), unit: 'MB/s' },
    { workload: 'server CPU during that dd', tool: 'atomfs mount, verity on', value: median(cpu.on!), unit: 's' },
    { workload: 'server CPU during that dd', tool: 'atomfs mount --allow-missing-verity, verity off', value: median(cpu.off!), unit: 's' },
  ];
  return {
    rows,
    verifyRatio: rows[1]!.value / rows[0]!.value,
    verifyAllRatio: rows[2]!.value / rows[0]!.value,
    verifyRatioLarge: rows[5]!.value / rows[4]!.value,
    readRatio: rows[6]!.value / rows[7]!.value,
    loadavg: loadavg(),
  };
}

/** Rows {workload, tool, value, unit} like benchExtract's. */
export async function benchVerity(runs = 3): Promise<Row[]> {
  return (await benchVerityDetailed(runs)).rows;
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const r = await benchVerityDetailed(Number(process.env.RUNS ?? 3));
  printTable(r.rows);
  process.stdout.write(
    `atomfs verify / veritysetup verify: ${r.verifyRatio.toFixed(2)}x, large layer ${r.verifyRatioLarge.toFixed(2)}x (goal >= 0.90); verifyAll in-process: ${r.verifyAllRatio.toFixed(2)}x\n` +
      `dd time with verity / without: ${(1 / r.readRatio).toFixed(2)} (goal <= 1.15)\n` +
      `load average at the end: ${r.loadavg.map((x) => x.toFixed(2)).join(' ')}\n`,
  );
}
