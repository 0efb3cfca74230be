/**
 * Issue 3 benchmark: the standard image served four ways, measured in the same run —
 * `atomfs mount --backend fuse` of the image as a one-layer OCI image with dm-verity on (every
 * block checked), `atomfs sqfs mount` of the plain image (verity off; --read-workers default and
 * 1), `squashfuse_ll`, and the kernel's squashfs over a loop device. Workloads on the standard
 * image (256 MiB zstd file + 20,000-entry tree):
 *   - sequential read: `dd if=MP/big.bin of=/dev/null bs=1M`, MB/s (10^6 bytes/s)
 *   - metadata walk:   `find MP | xargs stat >/dev/null`, seconds
 *   - random reads:    `fio` 4 KiB randread of big.bin, psync, 1 job, 4 s time_based, IOPS
 *   - parallel hashing: 16 concurrent `sha256sum` processes, each over 1/16 of the 19,800 files
 *     of tree/ (one fixed file list), wall seconds; the sums are checked against the source tree
 * Every measurement gets a fresh mount (no server-side cache carried over) and dropped kernel
 * caches; targets are interleaved run by run so background load drifts hit all of them alike.
 * Medians of RUNS (default 5). Needs root (mount, loop devices, drop_caches).
 *
 *   node bench/dist/fuse.js            (or `pnpm bench` for everything)
 */
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_READ_WORKERS } from '@atomfs/fuse';
import { DATA_DIR, dropCaches, median, printRatioTable, standardImage, type RatioRow } from './lib.js';
import {
  ATOMFS,
  BenchError,
  atomfsServerPid,
  clearStaleMount,
  cpuSeconds,
  pidsWith,
  requireTools,
  sh,
  squashfuseDaemons,
  timeShell,
  waitGone,
} from './proc.js';
import { verityLayer } from './verity.js';

export { BenchError } from './proc.js';

/** The default and one more: the full 0..3 sweep cost minutes that `pnpm bench` (< 15 min) does not have. */
const READ_WORKER_CHOICES: number[] = [...new Set([DEFAULT_READ_WORKERS, (DEFAULT_READ_WORKERS as number) === 1 ? 2 : 1])];
/** Concurrent hashing processes of the parallel-readers workload. */
const HASH_READERS = 16;
const FIO_SECONDS = 4;

interface Target {
  /** Table label. */
  tool: string;
  /** One of ours (gets ratio columns)? */
  ours?: boolean;
  /** --read-workers of our sqfs mount. */
  readWorkers?: number;
  mount(mp: string): void;
  unmount(mp: string): void;
  /** The user-space server's pid while mounted (its CPU time is reported); none for the kernel. */
  server?(mp: string): number | undefined;
  /**
   * Run the command once untimed and then time it with every cache warm: what the tools
   * themselves cost (find, xargs, stat formatting, sha256), the floor no filesystem can go below.
   */
  warm?: boolean;
}

export const VERITY_TOOL = 'atomfs mount --backend fuse (verity on)';
export const SQUASHFUSE_TOOL = 'squashfuse_ll';
export const KERNEL_TOOL = 'kernel squashfs (loop)';

function oursSqfs(image: string, readWorkers: number): Target {
  return {
    tool: `atomfs sqfs mount, verity off, --read-workers ${readWorkers}${readWorkers === DEFAULT_READ_WORKERS ? ' (default)' : ''}`,
    ours: true,
    readWorkers,
    mount: (mp) => sh([process.execPath, ATOMFS, 'sqfs', 'mount', '--read-workers', String(readWorkers), image, mp], 'atomfs sqfs mount'),
    server: (mp) => pidsWith(['sqfs', 'mount', '--foreground', mp])[0],
    unmount: (mp) => {
      const servers = pidsWith(['sqfs', 'mount', '--foreground', mp]);
      sh([process.execPath, ATOMFS, 'sqfs', 'umount', mp], 'atomfs sqfs umount');
      waitGone(servers, 'atomfs server');
    },
  };
}

/** The product path: OCI image, root hash annotation, our FUSE server checking every block. */
function oursVerity(ociDir: string, runDir: string): Target {
  return {
    tool: VERITY_TOOL,
    ours: true,
    mount: (mp) => sh([process.execPath, ATOMFS, 'mount', '--backend', 'fuse', '--metadir', runDir, `${ociDir}:on`, mp], 'atomfs mount'),
    server: () => atomfsServerPid(runDir),
    unmount: (mp) => {
      const server = atomfsServerPid(runDir);
      sh([process.execPath, ATOMFS, 'umount', '--metadir', runDir, mp], 'atomfs umount');
      waitGone([server], 'atomfs server');
    },
  };
}

function squashfuse(image: string): Target {
  return {
    tool: SQUASHFUSE_TOOL,
    // Default (daemon) mode: returns once the mount is up, like ours.
    mount: (mp) => sh(['squashfuse_ll', image, mp], 'squashfuse_ll'),
    server: (mp) => squashfuseDaemons(mp)[0],
    unmount: (mp) => {
      const daemons = squashfuseDaemons(mp);
      sh(['fusermount3', '-u', mp], 'fusermount3 -u');
      waitGone(daemons, 'squashfuse_ll');
    },
  };
}

function kernel(image: string, warm: boolean): Target {
  return {
    tool: warm ? 'kernel, warm caches (tool cost floor)' : KERNEL_TOOL,
    // mount -o loop sets autoclear: the loop device goes with the umount.
    mount: (mp) => sh(['mount', '-o', 'loop,ro', '-t', 'squashfs', image, mp], 'mount -o loop'),
    unmount: (mp) => sh(['umount', mp], 'umount'),
    warm,
  };
}

interface Workload {
  name: string;
  unit: string;
  /** Shell command to time (MP substituted). */
  command: (mp: string) => string;
  /** Wall seconds and stdout of one run → reported value. */
  value: (seconds: number, stdout: string) => number;
  /** Throws when the output shows a wrong answer. */
  check?: (stdout: string, tool: string) => void;
  /** Higher is better (MB/s, IOPS) or lower (seconds). */
  higherIsBetter: boolean;
  /** Issue goal for our verity-on path: speedup over squashfuse_ll. */
  goal?: number;
  /** Time the warm-cache floor too (meaningless for a time_based fio run). */
  warmFloor: boolean;
}

interface FioJson {
  jobs: Array<{ error: number; read: { iops: number; io_bytes: number } }>;
}

function parseFio(stdout: string): { iops: number; bytes: number; error: number } {
  // fio may print notes before the JSON document.
  const j = JSON.parse(stdout.slice(stdout.indexOf('{'))) as FioJson;
  const job = j.jobs[0];
  if (job === undefined) throw new BenchError('fio printed no job');
  return { iops: job.read.iops, bytes: job.read.io_bytes, error: job.error };
}

/** One file list for every target: the tree's files, relative to the mount, in a fixed order. */
function hashList(src: string): { list: string; files: number } {
  const files: string[] = [];
  for (const d of readdirSync(join(src, 'tree')).sort()) for (const f of readdirSync(join(src, 'tree', d)).sort()) files.push(`tree/${d}/${f}`);
  const list = join(DATA_DIR, 'hash-list.txt');
  writeFileSync(list, files.join('\n') + '\n');
  return { list, files: files.length };
}

function workloads(bigBytes: number, src: string): Workload[] {
  const { list, files } = hashList(src);
  const share = Math.ceil(files / HASH_READERS);
  // Output order varies with -P: sort, then one digest of all sums to compare with the source's.
  const hash = (root: string): string => `cd ${root} && xargs -a ${list} -P ${HASH_READERS} -n ${share} sha256sum | sort | sha256sum`;
  const expected = timeShell(hash(src), 'hashing the source tree').stdout;
  return [
    {
      name: 'sequential dd bs=1M (256 MiB zstd)',
      unit: 'MB/s',
      command: (mp) => `dd if=${mp}/big.bin of=/dev/null bs=1M status=none`,
      value: (s) => bigBytes / 1e6 / s,
      higherIsBetter: true,
      goal: 1.3,
      warmFloor: true,
    },
    {
      name: 'find | xargs stat (20k entries)',
      unit: 's',
      command: (mp) => `find ${mp} | xargs stat >/dev/null`,
      value: (s) => s,
      higherIsBetter: false,
      goal: 2,
      warmFloor: true,
    },
    {
      name: `fio 4 KiB randread psync (${FIO_SECONDS} s)`,
      unit: 'IOPS',
      command: (mp) =>
        `fio --name=randread --filename=${mp}/big.bin --readonly --rw=randread --bs=4k --ioengine=psync --iodepth=1 --numjobs=1 ` +
        `--time_based --runtime=${FIO_SECONDS} --output-format=json`,
      value: (_s, out) => parseFio(out).iops,
      check: (out, tool) => {
        const f = parseFio(out);
        if (f.error !== 0 || f.bytes <= 0) throw new BenchError(`${tool}: fio error ${f.error}, ${f.bytes} bytes read`);
      },
      higherIsBetter: true,
      warmFloor: false,
    },
    {
      name: `${HASH_READERS} parallel sha256sum over the tree (${files} files)`,
      unit: 's',
      command: (mp) => hash(mp),
      value: (s) => s,
      check: (out, tool) => {
        if (out !== expected) throw new BenchError(`${tool}: the tree's sha256 sums differ from the source directory's`);
      },
      higherIsBetter: false,
      warmFloor: true,
    },
  ];
}

export interface FuseBenchResult {
  /** Every target per workload; our rows carry speedups over squashfuse_ll and the kernel. */
  rows: RatioRow[];
  /** Human-readable ratio lines (also in the JSON). */
  ratios: Array<{ workload: string; versus: string; oursTool: string; speedup: number; target?: number }>;
  bestReadWorkers: Record<string, number>;
  runs: number;
  loadavgBefore: number[];
  loadavgAfter: number[];
  /** Reported value (MB/s, s, IOPS) per workload and tool, every run. */
  raw: Record<string, Record<string, number[]>>;
  /** Server CPU seconds during each run (user-space servers only). */
  rawServerCpu: Record<string, Record<string, number[]>>;
}

/**
 * Time one command with a fresh mount and cold caches. Also returns the server's CPU seconds
 * during the command (user + system, all threads): on a shared machine wall times swing with
 * other jobs, CPU cost per workload much less.
 */
function measure(target: Target, mp: string, w: Workload): { value: number; serverCpu: number | undefined } {
  const cmd = w.command(mp);
  target.mount(mp);
  try {
    const pid = target.server?.(mp);
    if (target.server && pid === undefined) throw new BenchError(`${target.tool}: no server process found for ${mp}`);
    if (target.warm) timeShell(cmd, `${target.tool}: warm-up`);
    else dropCaches();
    const cpu0 = pid === undefined ? 0 : cpuSeconds(pid);
    const r = timeShell(cmd, target.tool);
    const serverCpu = pid === undefined ? undefined : cpuSeconds(pid) - cpu0;
    w.check?.(r.stdout, target.tool);
    return { value: w.value(r.seconds, r.stdout), serverCpu };
  } finally {
    target.unmount(mp);
  }
}

/** Same answers from every target before timing anything: entry count and the big file's size. */
function sanityCheck(targets: Target[], mp: string, bigBytes: number): void {
  let count: string | undefined;
  for (const t of targets) {
    t.mount(mp);
    try {
      const n = sh(['sh', '-c', `find ${mp} | wc -l`], 'find').trim();
      if (count !== undefined && n !== count) throw new BenchError(`${t.tool} shows ${n} entries, others ${count}`);
      count = n;
      const size = statSync(join(mp, 'big.bin')).size;
      if (size !== bigBytes) throw new BenchError(`${t.tool}: big.bin is ${size} bytes, expected ${bigBytes}`);
    } finally {
      t.unmount(mp);
    }
  }
  if (Number(count) < 20_000) throw new BenchError(`only ${count} entries in the standard image`);
}

export async function benchFuse(runs = 5): Promise<FuseBenchResult> {
  if (process.getuid?.() !== 0) throw new BenchError('the FUSE benchmark needs root (mount, loop devices, drop_caches)');
  requireTools(['squashfuse_ll', 'fusermount3', 'dd', 'find', 'xargs', 'stat', 'fio', 'sha256sum']);
  const { image, src } = standardImage();
  const { ociDir } = await verityLayer();
  const bigBytes = statSync(join(src, 'big.bin')).size;
  const mp = join(DATA_DIR, 'fuse-mp');
  const runDir = join(DATA_DIR, 'fuse-run');
  mkdirSync(mp, { recursive: true });
  clearStaleMount(mp);
  rmSync(runDir, { recursive: true, force: true });

  const sq = squashfuse(image);
  const kern = kernel(image, false);
  const kernelWarm = kernel(image, true);
  const verity = oursVerity(ociDir, runDir);
  const targets: Target[] = [verity, ...READ_WORKER_CHOICES.map((n) => oursSqfs(image, n)), sq, kern, kernelWarm];
  const loads = workloads(bigBytes, src);
  const targetsOf = (w: Workload): Target[] => targets.filter((t) => w.warmFloor || !t.warm);
  sanityCheck(targets.filter((t) => !t.warm), mp, bigBytes);

  const loadavgBefore = loadavg();
  const raw: FuseBenchResult['raw'] = {};
  const rawServerCpu: FuseBenchResult['rawServerCpu'] = {};
  try {
    for (let run = 0; run < runs; run++) {
      for (const w of loads) {
        // Each round starts with a different target, so none is always the one that runs right
        // after the previous workload (this VM's speed drifts over a run: the kernel's own dd
        // varied 370-730 MB/s between rounds).
        const ts = targetsOf(w);
        for (const t of [...ts.slice(run % ts.length), ...ts.slice(0, run % ts.length)]) {
          const m = measure(t, mp, w);
          ((raw[w.name] ??= {})[t.tool] ??= []).push(m.value);
          if (m.serverCpu !== undefined) ((rawServerCpu[w.name] ??= {})[t.tool] ??= []).push(m.serverCpu);
        }
      }
    }
  } finally {
    clearStaleMount(mp);
    rmSync(runDir, { recursive: true, force: true });
  }
  const loadavgAfter = loadavg();

  const rows: RatioRow[] = [];
  const ratios: FuseBenchResult['ratios'] = [];
  const bestReadWorkers: Record<string, number> = {};
  for (const w of loads) {
    const value = (t: Target): number => median(raw[w.name]![t.tool]!);
    // Speedup > 1 means ours is faster (MB/s or IOPS ratio, or inverse time ratio).
    const speedup = (o: Target, other: Target): number => (w.higherIsBetter ? value(o) / value(other) : value(other) / value(o));
    for (const t of targetsOf(w)) {
      const row: RatioRow = { workload: w.name, tool: t.tool, value: value(t), unit: w.unit };
      if (t.ours) row.speedup = { [sq.tool]: speedup(t, sq), kernel: speedup(t, kern) };
      rows.push(row);
    }
    for (const t of targets) {
      const cpu = rawServerCpu[w.name]?.[t.tool];
      if (cpu === undefined) continue;
      const row: RatioRow = { workload: `${w.name}: server CPU`, tool: t.tool, value: median(cpu), unit: 's' };
      const sqCpu = rawServerCpu[w.name]?.[sq.tool];
      if (t.ours && sqCpu !== undefined) row.speedup = { [sq.tool]: median(sqCpu) / median(cpu) };
      rows.push(row);
    }
    const better = (a: number, b: number): boolean => (w.higherIsBetter ? a > b : a < b);
    const sqfsTargets = targets.filter((t) => t.readWorkers !== undefined);
    const best = sqfsTargets.reduce((a, b) => (better(value(b), value(a)) ? b : a));
    bestReadWorkers[w.name] = best.readWorkers!;
    for (const o of [verity, ...sqfsTargets]) {
      ratios.push({ workload: w.name, versus: sq.tool, oursTool: o.tool, speedup: speedup(o, sq), ...(o === verity && w.goal !== undefined ? { target: w.goal } : {}) });
      ratios.push({ workload: w.name, versus: kern.tool, oursTool: o.tool, speedup: speedup(o, kern) });
      if (!w.higherIsBetter && w.warmFloor) {
        // The filesystems' own share: time above what the tools cost on warm caches.
        const floor = value(kernelWarm);
        const above = (t: Target): number => Math.max(1e-3, value(t) - floor);
        ratios.push({ workload: `${w.name}, above the warm floor`, versus: sq.tool, oursTool: o.tool, speedup: above(sq) / above(o) });
      }
    }
  }
  return { rows, ratios, bestReadWorkers, runs, loadavgBefore, loadavgAfter, raw, rawServerCpu };
}

export function printFuseSummary(r: FuseBenchResult): void {
  for (const x of r.ratios) {
    const goal = x.target === undefined ? '' : `  (issue target >= ${x.target}x: ${x.speedup >= x.target ? 'met' : 'NOT met'})`;
    process.stdout.write(`${x.workload}: ${x.oursTool} vs ${x.versus}: ${x.speedup.toFixed(2)}x${goal}\n`);
  }
  for (const [w, n] of Object.entries(r.bestReadWorkers)) process.stdout.write(`${w}: best sqfs --read-workers ${n} (default ${DEFAULT_READ_WORKERS})\n`);
  const la = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');
  process.stdout.write(`load average before ${la(r.loadavgBefore)}, after ${la(r.loadavgAfter)} (${r.runs} runs per cell, medians)\n`);
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const r = await benchFuse(Number(process.env.RUNS ?? 5));
  printRatioTable(r.rows);
  printFuseSummary(r);
}
