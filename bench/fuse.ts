/**
 * Issue 3 benchmark: one squashfs image mounted three ways, measured in the same run —
 * `atomfs sqfs mount` (with --read-workers 0..3), `squashfuse_ll`, and the kernel's squashfs over
 * a loop device. Workloads on the standard image (256 MiB zstd file + 20,000-entry tree):
 *   - sequential read: `dd if=MP/big.bin of=/dev/null bs=1M`, MB/s (10^6 bytes/s)
 *   - metadata walk:   `find MP | xargs stat >/dev/null`, seconds
 * Every measurement gets a fresh mount (no server-side cache carried over) and dropped kernel
 * caches; targets are interleaved run by run so background load drifts hit all of them alike.
 * Medians of RUNS (default 5). Needs root (mount, loop devices, drop_caches).
 *
 *   node bench/dist/fuse.js            (or `pnpm bench` for everything)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_READ_WORKERS } from '@atomfs/fuse';
import { DATA_DIR, dropCaches, median, printRatioTable, standardImage, type RatioRow } from './lib.js';

const ATOMFS = new URL('../../bin/atomfs', import.meta.url).pathname;
const READ_WORKER_CHOICES = [0, 1, 2, 3];

export class BenchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

interface Target {
  /** Table label. */
  tool: string;
  /** --read-workers of our mount; undefined for the other tools. */
  readWorkers?: number;
  mount(image: string, mp: string): void;
  unmount(mp: string): void;
  /** The user-space server's pid while mounted (its CPU time is reported); none for the kernel. */
  server?(mp: string): number | undefined;
  /**
   * Run the command once untimed and then time it with every cache warm: what the tools
   * themselves cost (find, xargs, stat formatting), the floor no filesystem can go below.
   */
  warm?: boolean;
}

function sh(argv: string[], what: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  if (r.status !== 0) throw new BenchError(`${what}: ${argv.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr ?? '').trim()}`);
  return r.stdout;
}

function isMounted(mp: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === mp);
}

/** PIDs whose command line contains every one of `words` (like pgrep -f, without its regex). */
function pidsWith(words: string[]): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (words.every((w) => argv.includes(w))) out.push(Number(name));
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Wait (busy-polling, this process serves nothing) until the given processes are gone. */
function waitGone(pids: number[], what: string): void {
  const end = Date.now() + 15_000;
  while (pids.some(alive)) {
    if (Date.now() > end) throw new BenchError(`${what}: process ${pids.filter(alive).join(', ')} still running after unmount`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}

function ours(readWorkers: number): Target {
  return {
    tool: `atomfs sqfs mount --read-workers ${readWorkers}${readWorkers === DEFAULT_READ_WORKERS ? ' (default)' : ''}`,
    readWorkers,
    mount: (image, mp) => sh([process.execPath, ATOMFS, 'sqfs', 'mount', '--read-workers', String(readWorkers), image, mp], 'atomfs mount'),
    server: (mp) => pidsWith(['sqfs', 'mount', '--foreground', mp])[0],
    unmount: (mp) => {
      const servers = pidsWith(['sqfs', 'mount', '--foreground', mp]);
      sh([process.execPath, ATOMFS, 'sqfs', 'umount', mp], 'atomfs umount');
      waitGone(servers, 'atomfs server');
    },
  };
}

function squashfuseDaemons(mp: string): number[] {
  return pidsWith([mp]).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('squashfuse_ll');
    } catch {
      return false;
    }
  });
}

/** utime + stime of a process (all its threads), seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of proc(5); f[0] is field 3.
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

const squashfuse: Target = {
  tool: 'squashfuse_ll',
  // Default (daemon) mode: returns once the mount is up, like ours.
  mount: (image, mp) => sh(['squashfuse_ll', image, mp], 'squashfuse_ll'),
  server: (mp) => squashfuseDaemons(mp)[0],
  unmount: (mp) => {
    const daemons = squashfuseDaemons(mp);
    sh(['fusermount3', '-u', mp], 'fusermount3 -u');
    waitGone(daemons, 'squashfuse_ll');
  },
};

const kernelWarm: Target = {
  tool: 'kernel, warm caches (tool cost floor)',
  mount: (image, mp) => sh(['mount', '-o', 'loop,ro', '-t', 'squashfs', image, mp], 'mount -o loop'),
  unmount: (mp) => sh(['umount', mp], 'umount'),
  warm: true,
};

const kernel: Target = {
  tool: 'kernel squashfs (loop)',
  mount: (image, mp) => sh(['mount', '-o', 'loop,ro', '-t', 'squashfs', image, mp], 'mount -o loop'),
  // mount -o loop sets autoclear: the loop device goes with the umount.
  unmount: (mp) => sh(['umount', mp], 'umount'),
};

interface Workload {
  name: string;
  unit: string;
  /** Command to time (run through sh -c; MP substituted). */
  command: (mp: string) => string;
  /** Seconds → reported value. */
  value: (seconds: number) => number;
  /** Higher is better (MB/s) or lower (seconds). */
  higherIsBetter: boolean;
}

function workloads(bigBytes: number): Workload[] {
  return [
    {
      name: 'sequential dd bs=1M (256 MiB zstd)',
      unit: 'MB/s',
      command: (mp) => `dd if=${mp}/big.bin of=/dev/null bs=1M status=none`,
      value: (s) => bigBytes / 1e6 / s,
      higherIsBetter: true,
    },
    {
      name: 'find | xargs stat (20k entries)',
      unit: 's',
      command: (mp) => `find ${mp} | xargs stat >/dev/null`,
      value: (s) => s,
      higherIsBetter: false,
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
  /** Wall seconds per workload and tool, every run. */
  raw: Record<string, Record<string, number[]>>;
  /** Server CPU seconds during each run (user-space servers only). */
  rawServerCpu: Record<string, Record<string, number[]>>;
}

/**
 * Time one command with a fresh mount and cold caches. Also returns the server's CPU seconds
 * during the command (user + system, all threads): on a shared machine wall times swing with
 * other jobs, CPU cost per workload much less.
 */
function measure(target: Target, image: string, mp: string, cmd: string): { seconds: number; serverCpu: number | undefined } {
  target.mount(image, mp);
  try {
    const pid = target.server?.(mp);
    if (target.server && pid === undefined) throw new BenchError(`${target.tool}: no server process found for ${mp}`);
    if (target.warm) {
      const w = spawnSync('sh', ['-c', cmd], { stdio: 'ignore', timeout: 600_000 });
      if (w.status !== 0) throw new BenchError(`${target.tool}: warm-up ${cmd} failed`);
    } else {
      dropCaches();
    }
    const cpu0 = pid === undefined ? 0 : cpuSeconds(pid);
    const t0 = process.hrtime.bigint();
    const r = spawnSync('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const serverCpu = pid === undefined ? undefined : cpuSeconds(pid) - cpu0;
    if (r.status !== 0) throw new BenchError(`${target.tool}: ${cmd} failed (${r.status ?? r.signal}): ${r.stderr.toString().trim()}`);
    return { seconds, serverCpu };
  } finally {
    target.unmount(mp);
  }
}

/** Same answers from every target before timing anything: entry count and the big file's size. */
function sanityCheck(targets: Target[], image: string, mp: string, bigBytes: number): void {
  let count: string | undefined;
  for (const t of targets) {
    t.mount(image, mp);
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

export function benchFuse(runs = 5): FuseBenchResult {
  if (process.getuid?.() !== 0) throw new BenchError('the FUSE benchmark needs root (mount, loop devices, drop_caches)');
  for (const tool of ['squashfuse_ll', 'fusermount3', 'dd', 'find', 'xargs', 'stat']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new BenchError(`${tool} is not installed (run scripts/setup.sh)`);
  }
  const { image, src } = standardImage();
  const bigBytes = statSync(join(src, 'big.bin')).size;
  const mp = join(DATA_DIR, 'fuse-mp');
  mkdirSync(mp, { recursive: true });
  if (isMounted(mp)) sh(['umount', '-l', mp], 'stale mount from an earlier run');

  const targets: Target[] = [...READ_WORKER_CHOICES.map(ours), squashfuse, kernel, kernelWarm];
  const loads = workloads(bigBytes);
  sanityCheck(targets, image, mp, bigBytes);

  const loadavgBefore = loadavg();
  const raw: FuseBenchResult['raw'] = {};
  const rawServerCpu: FuseBenchResult['rawServerCpu'] = {};
  for (let run = 0; run < runs; run++) {
    for (const w of loads) {
      for (const t of targets) {
        const m = measure(t, image, mp, w.command(mp));
        ((raw[w.name] ??= {})[t.tool] ??= []).push(m.seconds);
        if (m.serverCpu !== undefined) ((rawServerCpu[w.name] ??= {})[t.tool] ??= []).push(m.serverCpu);
      }
    }
  }
  const loadavgAfter = loadavg();

  const rows: RatioRow[] = [];
  const ratios: FuseBenchResult['ratios'] = [];
  const bestReadWorkers: Record<string, number> = {};
  for (const w of loads) {
    const value = (t: Target): number => w.value(median(raw[w.name]![t.tool]!));
    // Speedup > 1 means ours is faster (MB/s ratio, or inverse time ratio).
    const speedup = (o: Target, other: Target): number => (w.higherIsBetter ? value(o) / value(other) : value(other) / value(o));
    for (const t of targets) {
      const row: RatioRow = { workload: w.name, tool: t.tool, value: value(t), unit: w.unit };
      if (t.readWorkers !== undefined) row.speedup = { [squashfuse.tool]: speedup(t, squashfuse), kernel: speedup(t, kernel) };
      rows.push(row);
    }
    for (const t of targets) {
      const cpu = rawServerCpu[w.name]?.[t.tool];
      if (cpu === undefined) continue;
      const row: RatioRow = { workload: `${w.name}: server CPU`, tool: t.tool, value: median(cpu), unit: 's' };
      const sq = rawServerCpu[w.name]?.[squashfuse.tool];
      if (t.readWorkers !== undefined && sq !== undefined) row.speedup = { [squashfuse.tool]: median(sq) / median(cpu) };
      rows.push(row);
    }
    const better = (a: number, b: number): boolean => (w.higherIsBetter ? a > b : a < b);
    const ourTargets = targets.filter((t) => t.readWorkers !== undefined);
    const best = ourTargets.reduce((a, b) => (better(value(b), value(a)) ? b : a));
    bestReadWorkers[w.name] = best.readWorkers!;
    const dflt = ourTargets.find((t) => t.readWorkers === DEFAULT_READ_WORKERS) ?? best;
    const goal = w.higherIsBetter ? 1.3 : 2;
    for (const o of best === dflt ? [dflt] : [dflt, best]) {
      ratios.push({ workload: w.name, versus: squashfuse.tool, oursTool: o.tool, speedup: speedup(o, squashfuse), target: goal });
      ratios.push({ workload: w.name, versus: kernel.tool, oursTool: o.tool, speedup: speedup(o, kernel) });
      if (!w.higherIsBetter) {
        // The filesystems' own share: time above what the tools cost on warm caches.
        const floor = value(kernelWarm);
        const above = (t: Target): number => Math.max(1e-3, value(t) - floor);
        ratios.push({ workload: `${w.name}, above the warm floor`, versus: squashfuse.tool, oursTool: o.tool, speedup: above(squashfuse) / above(o) });
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
  for (const [w, n] of Object.entries(r.bestReadWorkers)) process.stdout.write(`${w}: best --read-workers ${n} (default ${DEFAULT_READ_WORKERS})\n`);
  const la = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');
  process.stdout.write(`load average before ${la(r.loadavgBefore)}, after ${la(r.loadavgAfter)} (${r.runs} runs per cell, medians)\n`);
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const r = benchFuse(Number(process.env.RUNS ?? 5));
  printRatioTable(r.rows);
  printFuseSummary(r);
}
