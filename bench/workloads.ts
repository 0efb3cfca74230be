/**
 * Issue 17 benchmark: real workloads on a Debian minbase image (test/lib/debian-image.ts: three
 * zstd squashfs layers with dm-verity data, root hashes in the manifest), through three stacks in
 * one run:
 *   - `atomfs mount --backend fuse OCIDIR:debian` (ours: one FUSE server, every block verified);
 *   - squashfuse_ll per layer + kernel overlayfs (what Go atomfs does as an unprivileged user);
 *   - the kernel: loop + squashfs per layer + overlayfs (Go atomfs as root without dm-verity).
 * Workloads, each on a fresh mount with caches dropped:
 *   - cold mount + first `ls` of the root (the mount commands and ls as one shell script);
 *   - `chroot MP dpkg --verify` (every file of every package read and MD5-summed; its report is
 *     compared between the stacks: the image's excluded docs show up as "missing" in all of them);
 *   - `tar -C MP -cf - . | wc -c` (byte counts compared; a pipe, since tar reads nothing for /dev/null);
 *   - `ls -lR MP` (line counts compared);
 *   - program starts: a loop in `chroot MP sh` starting perl, ls and dpkg 30 times each (exec,
 *     dynamic linking, mmap page faults; only the first round is cold).
 * Every workload but the first runs twice on each mount, caches dropped before each: the first
 * run meets a fresh server (the case), the second a server that has warmed up.
 * Targets take turns run by run; medians of RUNS. Needs root and debootstrap's network the first
 * time (the image is cached under /var/tmp/atomfs-test-debian).
 *
 *   node bench/dist/workloads.js
 */
import { mkdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { DebianImage } from '../test/lib/debian-image.js';
import { DATA_DIR, dropCaches, median, printRatioTable, type RatioRow } from './lib.js';
import { BenchError, cpuSeconds, requireTools, timeShell } from './proc.js';
import { atomfsMount, clearStacks, kernelStack, squashfuseStack, withMount, type Layer, type Stack } from './stacks.js';

export const WL_VERITY_TOOL = 'atomfs mount --backend fuse (verity on)';
export const WL_SQUASHFUSE_TOOL = 'squashfuse_ll x3 + overlayfs';
export const WL_KERNEL_TOOL = 'kernel: loop x3 + overlayfs';
export const WL_PREFIX = 'Debian minbase, ';
export const WL_MOUNT_WORKLOAD = `${WL_PREFIX}cold mount + first ls`;

const STARTS = 30;

/**
 * Suffix of the same workload run once more on the same mount, kernel caches dropped again: the
 * servers keep what they learnt (decoded metadata, verified hash blocks, and for ours the code
 * V8 has compiled by then), so the pair shows what a fresh server costs.
 */
export const WL_SECOND_RUN = ', 2nd run on the same mount';

interface Workload {
  name: string;
  /** Shell script given MP; its stdout is the check value. */
  command: (mp: string) => string;
  /** Mount inside the timed script (cold mount latency) instead of before it. */
  timesMount?: boolean;
}

const WORKLOADS: Workload[] = [
  { name: 'cold mount + first ls', command: (mp) => `ls ${mp}`, timesMount: true },
  { name: 'chroot dpkg --verify', command: (mp) => `chroot ${mp} dpkg --verify 2>&1 | sha256sum` },
  { name: 'tar -cf - . | wc -c', command: (mp) => `tar -C ${mp} -cf - . | wc -c` },
  { name: 'ls -lR', command: (mp) => `ls -lR ${mp} | wc -l` },
  {
    name: `program starts in chroot (perl, ls, dpkg x${STARTS})`,
    command: (mp) =>
      `chroot ${mp} /bin/sh -c 'i=0; while [ $i -lt ${STARTS} ]; do perl -e 1; ls / >/dev/null; dpkg --version >/dev/null; i=$((i+1)); done; echo ok'`,
  },
];

export interface WorkloadsResult {
  rows: RatioRow[];
  raw: Record<string, Record<string, number[]>>;
  rawServerCpu: Record<string, Record<string, number[]>>;
  loadavgBefore: number[];
  loadavgAfter: number[];
}

async function loadDebianImage(): Promise<DebianImage> {
  const mod = (await import(new URL('../../test/dist/lib/debian-image.js', import.meta.url).href)) as { debianImage: () => Promise<DebianImage> };
  return mod.debianImage();
}

export async function benchWorkloads(runs = 3): Promise<WorkloadsResult> {
  if (process.getuid?.() !== 0) throw new BenchError('the real-workload benchmark needs root (mount, loop devices, chroot, drop_caches)');
  requireTools(['squashfuse_ll', 'fusermount3', 'tar', 'chroot', 'sha256sum']);
  const img = await loadDebianImage();
  const layers: Layer[] = img.layers.map((blob, i) => ({ blob, squashfsBytes: img.squashfsBytes[i]! }));
  const work = join(DATA_DIR, 'workloads-run');
  const mp = join(work, 'mp');
  const works = ['sf', 'k'].map((w) => join(work, w));
  clearStacks(mp, works);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(mp, { recursive: true });
  const stacks: Stack[] = [
    atomfsMount(WL_VERITY_TOOL, img.ref, join(work, 'run')),
    squashfuseStack(WL_SQUASHFUSE_TOOL, layers, works[0]!),
    kernelStack(WL_KERNEL_TOOL, layers, works[1]!),
  ];

  const raw: WorkloadsResult['raw'] = {};
  const rawServerCpu: WorkloadsResult['rawServerCpu'] = {};
  const answers: Record<string, string> = {};
  const check = (w: Workload, t: Stack, out: string): void => {
    const a = answers[w.name];
    if (a !== undefined && a !== out) throw new BenchError(`${t.tool}: ${w.name} printed ${JSON.stringify(out)}, another stack ${JSON.stringify(a)}`);
    answers[w.name] = out;
  };
  const loadavgBefore = loadavg();
  try {
    for (let run = 0; run < runs; run++) {
      for (const w of WORKLOADS) {
        for (const t of [...stacks.slice(run % stacks.length), ...stacks.slice(0, run % stacks.length)]) {
          if (w.timesMount) {
            dropCaches();
            let r: { seconds: number; stdout: string } | undefined;
            try {
              r = timeShell(`${t.mountScript(mp)} && ${w.command(mp)}`, `${t.tool}: ${w.name}`, 120_000);
            } finally {
              try {
                t.unmount(mp);
              } catch (err) {
                if (r !== undefined) throw err;
              } finally {
                clearStacks(mp, works);
              }
            }
            check(w, t, r.stdout);
            ((raw[w.name] ??= {})[t.tool] ??= []).push(r.seconds);
            continue;
          }
          withMount(t, mp, () => {
            const pids = t.servers(mp);
            dropCaches();
            const cpu0 = pids.reduce((a, p) => a + cpuSeconds(p), 0);
            const r = timeShell(w.command(mp), `${t.tool}: ${w.name}`);
            const cpu = pids.reduce((a, p) => a + cpuSeconds(p), 0) - cpu0;
            check(w, t, r.stdout);
            ((raw[w.name] ??= {})[t.tool] ??= []).push(r.seconds);
            if (pids.length > 0) ((rawServerCpu[w.name] ??= {})[t.tool] ??= []).push(cpu);
            dropCaches();
            const again = timeShell(w.command(mp), `${t.tool}: ${w.name}${WL_SECOND_RUN}`);
            check(w, t, again.stdout);
            ((raw[`${w.name}${WL_SECOND_RUN}`] ??= {})[t.tool] ??= []).push(again.seconds);
          });
        }
      }
    }
  } finally {
    clearStacks(mp, works);
    rmSync(work, { recursive: true, force: true });
  }
  const loadavgAfter = loadavg();

  const rows: RatioRow[] = [];
  for (const name of WORKLOADS.flatMap((w) => (w.timesMount ? [w.name] : [w.name, `${w.name}${WL_SECOND_RUN}`]))) {
    const v = (tool: string): number => median(raw[name]![tool]!);
    for (const t of stacks) {
      const row: RatioRow = { workload: `${WL_PREFIX}${name}`, tool: t.tool, value: v(t.tool), unit: 's' };
      // > 1: ours takes less time.
      if (t.ours) row.speedup = { [WL_SQUASHFUSE_TOOL]: v(WL_SQUASHFUSE_TOOL) / v(t.tool), kernel: v(WL_KERNEL_TOOL) / v(t.tool) };
      rows.push(row);
    }
    for (const t of stacks) {
      const cpu = rawServerCpu[name]?.[t.tool];
      if (cpu !== undefined) rows.push({ workload: `${WL_PREFIX}${name}: server CPU`, tool: t.tool, value: median(cpu), unit: 's' });
    }
  }
  return { rows, raw, rawServerCpu, loadavgBefore, loadavgAfter };
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const r = await benchWorkloads(Number(process.env.RUNS ?? 3));
  printRatioTable(r.rows);
  const la = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');
  process.stdout.write(`load average before ${la(r.loadavgBefore)}, after ${la(r.loadavgAfter)}\n`);
}
