import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prng } from '@atomfs/testkit';

/** Where generated datasets live between runs (large; not in the repo). */
export const DATA_DIR = process.env.ATOMFS_BENCH_DIR ?? '/var/tmp/atomfs-bench';

export function dropCaches(): void {
  // Cold-cache numbers: write back, then drop page cache, dentries and inodes (needs root).
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
  } catch {
    process.stderr.write('bench: cannot drop caches (not root?): numbers are warm-cache\n');
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Time several commands `runs` rounds each, taking turns within every round (so a slow spell of
 * the machine, or the disk still discarding what the previous run deleted, hits all of them),
 * caches dropped before each; returns each command's median in seconds.
 */
export function timeCommands(argvs: string[][], runs: number, before?: () => void): number[] {
  const times: number[][] = argvs.map(() => []);
  for (let i = 0; i < runs; i++) {
    // Each round starts with the next command, so that whatever the previous command left
    // behind (writeback, a warm CPU cache, drift) falls on every command alike.
    const order = argvs.map((_, k) => (k + i) % argvs.length);
    order.forEach((k) => {
      const argv = argvs[k]!;
      before?.();
      dropCaches();
      const t0 = process.hrtime.bigint();
      const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
      const t = Number(process.hrtime.bigint() - t0) / 1e9;
      if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr?.toString().trim()}`);
      times[k]!.push(t);
    });
  }
  return times.map(median);
}

const WORDS = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua squashfs overlay verity'.split(' ');

/** `n` bytes that compress about 2.5:1 with zstd: a mix of random bytes and word text. */
export function compressible(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let i = 0;
  while (i < n) {
    const run = Math.min(n - i, 256 + (rand() % 1024));
    if (rand() % 100 < 27) {
      for (let j = 0; j < run; j++) b[i + j] = rand() & 0xff;
    } else {
      let j = 0;
      while (j < run) {
        const w = WORDS[rand() % WORDS.length]! + ' ';
        j += b.write(w, i + j, Math.min(w.length, run - j), 'latin1');
      }
    }
    i += run;
  }
  return b;
}

/**
 * The standard dataset of the issues: one 256 MiB file (≈2.5:1) plus a 20,000-entry tree of small
 * files in 200 directories, built into a zstd image by mksquashfs. Reused when already built.
 */
export function standardImage(): { image: string; src: string } {
  const src = join(DATA_DIR, 'std-src');
  const image = join(DATA_DIR, 'std-zstd.sqfs');
  if (existsSync(image)) return { image, src };
  mkdirSync(join(src, 'tree'), { recursive: true });
  const rand = prng(7);
  writeFileSync(join(src, 'big.bin'), compressible(rand, 256 << 20));
  for (let d = 0; d < 200; d++) {
    const dir = join(src, 'tree', `d${d}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 99; f++) writeFileSync(join(dir, `f${f}.txt`), compressible(rand, 200 + (rand() % 6000)));
  }
  execFileSync('mksquashfs', [src, image, '-noappend', '-quiet', '-no-progress', '-comp', 'zstd'], { stdio: 'inherit' });
  return { image, src };
}

export interface Row {
  workload: string;
  tool: string;
  value: number;
  unit: string;
}

export function printTable(rows: Row[]): void {
  const w = Math.max(...rows.map((r) => r.workload.length));
  const t = Math.max(...rows.map((r) => r.tool.length));
  for (const r of rows) process.stdout.write(`${r.workload.padEnd(w)}  ${r.tool.padEnd(t)}  ${r.value.toFixed(3).padStart(10)} ${r.unit}\n`);
}

/** A result row with speedups over other tools (> 1: this row is faster; MB/s ratio or inverse time ratio). */
export interface RatioRow extends Row {
  speedup?: Record<string, number>;
}

/** One table: workload, tool, value, then one "x faster than T" column per tool compared against. */
export function printRatioTable(rows: RatioRow[]): void {
  const versus = [...new Set(rows.flatMap((r) => Object.keys(r.speedup ?? {})))];
  const header = ['workload', 'tool', 'value', ...versus.map((v) => `vs ${v}`)];
  const cells = rows.map((r) => [
    r.workload,
    r.tool,
    `${r.value.toFixed(r.unit === 's' ? 3 : 0)} ${r.unit}`,
    ...versus.map((v) => (r.speedup?.[v] === undefined ? '' : `${r.speedup[v]!.toFixed(2)}x`)),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]): string => c.map((x, i) => (i < 2 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ') + '\n';
  process.stdout.write(line(header));
  process.stdout.write(line(widths.map((w) => '-'.repeat(w))));
  for (const c of cells) process.stdout.write(line(c));
}
