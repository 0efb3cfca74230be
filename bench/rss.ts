/**
 * Server peak memory while walking a 1 GiB image: every byte of every file read once through a
 * fresh mount with cold caches (`find MP -type f -print0 | xargs -0 cat | wc -c`, the byte count
 * checked), then the server's VmHWM (peak resident set, all threads) read from /proc before
 * unmounting. Ours: the FUSE server of `atomfs mount --backend fuse` (verity on; the one process
 * with its worker threads, plus any child processes) and of `atomfs sqfs mount` (verity off);
 * peer: the squashfuse_ll daemon. The walk's wall time is reported too. Medians of min(RUNS, 3).
 * The image: a 512 MiB file and 4,096 files of 128 KiB in 64 directories (≈2.5:1 zstd), as a
 * one-layer OCI image with dm-verity data. Needs root.
 *
 *   node bench/dist/rss.js
 */
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { prng } from '@atomfs/testkit';
import { compressible, DATA_DIR, dropCaches, median, printRatioTable, type RatioRow } from './lib.js';
import { verityImage, type OciImage } from './oci-layers.js';
import {
  ATOMFS,
  BenchError,
  atomfsServerPid,
  clearStaleMount,
  descendants,
  peakRss,
  pidsWith,
  requireTools,
  sh,
  squashfuseDaemons,
  timeShell,
  waitGone,
} from './proc.js';

const BIG_BYTES = 512 << 20;
const DIRS = 64;
const FILES_PER_DIR = 64;
const FILE_BYTES = 128 << 10;
export const TOTAL_BYTES = BIG_BYTES + DIRS * FILES_PER_DIR * FILE_BYTES;

function sourceDir(): string[] {
  const src = join(DATA_DIR, 'gib-src');
  rmSync(src, { recursive: true, force: true });
  mkdirSync(src, { recursive: true });
  const rand = prng(13);
  // In 64 MiB pieces: one 512 MiB Buffer would count against this process's memory for nothing.
  const fd = openSync(join(src, 'big.bin'), 'w');
  try {
    for (let done = 0; done < BIG_BYTES; done += 64 << 20) {
      const b = compressible(rand, Math.min(64 << 20, BIG_BYTES - done));
      if (writeSync(fd, b) !== b.length) throw new BenchError('short write');
    }
  } finally {
    closeSync(fd);
  }
  for (let d = 0; d < DIRS; d++) {
    const dir = join(src, 'files', `d${d}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < FILES_PER_DIR; f++) writeFileSync(join(dir, `f${f}`), compressible(rand, FILE_BYTES));
  }
  return [src];
}

export async function gibImage(): Promise<OciImage> {
  return verityImage(join(DATA_DIR, 'gib-oci'), join(DATA_DIR, 'gib-oci.json'), join(DATA_DIR, 'gib-src'), sourceDir);
}

interface RssTarget {
  tool: string;
  ours?: boolean;
  mount(): void;
  /** The server and its child processes. */
  servers(): number[];
  unmount(): void;
}

export interface RssResult {
  rows: RatioRow[];
  /** Peak RSS bytes and walk seconds per tool, every run. */
  raw: Record<string, { rssBytes: number[]; seconds: number[] }>;
}

export const RSS_WORKLOAD = 'server peak RSS (VmHWM), reading all of a 1 GiB image';

export async function benchRss(runs = 3): Promise<RssResult> {
  if (process.getuid?.() !== 0) throw new BenchError('the RSS benchmark needs root');
  requireTools(['squashfuse_ll', 'fusermount3', 'mksquashfs', 'veritysetup', 'xargs', 'wc']);
  const img = await gibImage();
  const blob = img.blobs[0]!;
  const work = join(DATA_DIR, 'rss-run');
  const mp = join(work, 'mp');
  const runDir = join(work, 'run');
  clearStaleMount(mp);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(mp, { recursive: true });
  const node = process.execPath;
  const withKids = (pid: number | undefined): number[] => (pid === undefined ? [] : [pid, ...descendants(pid)]);

  const targets: RssTarget[] = [
    {
      tool: 'atomfs mount --backend fuse (verity on)',
      ours: true,
      mount: () => sh([node, ATOMFS, 'mount', '--backend', 'fuse', '--metadir', runDir, `${img.ociDir}:on`, mp], 'atomfs mount'),
      servers: () => withKids(atomfsServerPid(runDir)),
      unmount: () => {
        const s = atomfsServerPid(runDir);
        sh([node, ATOMFS, 'umount', '--metadir', runDir, mp], 'atomfs umount');
        waitGone([s], 'atomfs server');
      },
    },
    {
      tool: 'atomfs sqfs mount (verity off)',
      ours: true,
      mount: () => sh([node, ATOMFS, 'sqfs', 'mount', blob, mp], 'atomfs sqfs mount'),
      servers: () => withKids(pidsWith(['sqfs', 'mount', '--foreground', mp])[0]),
      unmount: () => {
        const s = pidsWith(['sqfs', 'mount', '--foreground', mp]);
        sh([node, ATOMFS, 'sqfs', 'umount', mp], 'atomfs sqfs umount');
        waitGone(s, 'atomfs server');
      },
    },
    {
      tool: 'squashfuse_ll',
      mount: () => sh(['squashfuse_ll', blob, mp], 'squashfuse_ll'),
      servers: () => withKids(squashfuseDaemons(mp)[0]),
      unmount: () => {
        const d = squashfuseDaemons(mp);
        sh(['fusermount3', '-u', mp], 'fusermount3 -u');
        waitGone(d, 'squashfuse_ll');
      },
    },
  ];

  const raw: RssResult['raw'] = {};
  try {
    for (let run = 0; run < runs; run++) {
      for (const t of targets) {
        t.mount();
        try {
          const pids = t.servers();
          if (pids.length === 0) throw new BenchError(`${t.tool}: no server process for ${mp}`);
          dropCaches();
          const r = timeShell(`find ${mp} -type f -print0 | xargs -0 cat | wc -c`, `${t.tool}: walk`);
          if (Number(r.stdout.trim()) !== TOTAL_BYTES) throw new BenchError(`${t.tool}: read ${r.stdout.trim()} bytes, expected ${TOTAL_BYTES}`);
          const rss = t.servers().reduce((sum, p) => sum + peakRss(p), 0);
          const x = (raw[t.tool] ??= { rssBytes: [], seconds: [] });
          x.rssBytes.push(rss);
          x.seconds.push(r.seconds);
        } finally {
          t.unmount();
        }
      }
    }
  } finally {
    clearStaleMount(mp);
    rmSync(work, { recursive: true, force: true });
  }
  const sq = targets[2]!;
  const mib = (t: RssTarget): number => median(raw[t.tool]!.rssBytes) / 2 ** 20;
  const secs = (t: RssTarget): number => median(raw[t.tool]!.seconds);
  const rows: RatioRow[] = [];
  for (const t of targets) {
    rows.push({ workload: RSS_WORKLOAD, tool: t.tool, value: mib(t), unit: 'MiB', ...(t.ours ? { speedup: { squashfuse_ll: mib(sq) / mib(t) } } : {}) });
  }
  for (const t of targets) {
    rows.push({ workload: 'that walk of 1 GiB, wall time', tool: t.tool, value: secs(t), unit: 's', ...(t.ours ? { speedup: { squashfuse_ll: secs(sq) / secs(t) } } : {}) });
  }
  return { rows, raw };
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const r = await benchRss(Math.min(3, Number(process.env.RUNS ?? 3)));
  printRatioTable(r.rows);
}
