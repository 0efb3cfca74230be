/**
 * Issue 17 benchmark: sequential reads of every data shape, through five mounts of the same layer
 * in one run — `atomfs mount` with verity on (root hash annotation; every block checked) and off
 * (`--allow-missing-verity` on the same blob without annotation: the same server, no hashing),
 * `atomfs sqfs mount` (no verity), squashfuse_ll and the kernel's squashfs (loop).
 *   - incompressible: 256 MiB of random bytes (zstd stores the blocks uncompressed);
 *   - text-like: the standard image's 256 MiB big.bin (random runs and word text, ~2.5:1);
 *   - highly compressible: 256 MiB of word text with numbered lines;
 *   - many small files: `tar -cf - . | cat` of the standard image's tree/ (19,800 files of 0.2-6 KiB;
 *     `| cat` because GNU tar reads nothing when its output is /dev/null), MB/s of file bytes.
 * `dd bs=1M` for the big files. A fresh mount per measurement, caches dropped, targets taking turns
 * run by run; medians of RUNS. MB = 10^6 bytes. Needs root.
 *
 *   node bench/dist/shapes.js
 */
import { closeSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { prng } from '@atomfs/testkit';
import { DATA_DIR, dropCaches, median, printRatioTable, standardImage, type RatioRow } from './lib.js';
import { verityImage } from './oci-layers.js';
import { BenchError, cpuSeconds, requireTools, timeShell } from './proc.js';
import { atomfsMount, atomfsSqfsMount, clearStacks, kernelStack, squashfuseStack, withMount, type Layer, type Stack } from './stacks.js';
import { verityLayer } from './verity.js';

export const SHAPES_VERITY_TOOL = 'atomfs mount (verity on)';
export const SHAPES_UNVERIFIED_TOOL = 'atomfs mount --allow-missing-verity (verity off)';
export const SHAPES_SQUASHFUSE_TOOL = 'squashfuse_ll';
export const SHAPES_WORKLOAD_PREFIX = 'sequential read, ';

const BIG = 256 << 20;

/** The squashfs bytes_used (superblock offset 40), rounded up to 4 KiB: where the verity data starts. */
export function squashfsBytesOf(blob: string): number {
  const fd = openSync(blob, 'r');
  try {
    const b = Buffer.alloc(8);
    if (readSync(fd, b, 0, 8, 40) !== 8) throw new BenchError(`${blob}: too short for a squashfs image`);
    return Math.ceil(Number(b.readBigUInt64LE(0)) / 4096) * 4096;
  } finally {
    closeSync(fd);
  }
}

const WORDS = 'the quick brown fox jumps over lazy dog squashfs overlay verity block inode directory fragment table'.split(' ');

/** `n` bytes of numbered lines of words: zstd packs it far tighter than the standard file. */
function wordText(n: number): Buffer {
  const rand = prng(23);
  const b = Buffer.allocUnsafe(n);
  let i = 0;
  let line = 0;
  while (i < n) {
    let s = `${line++}:`;
    for (let k = 0; k < 8; k++) s += ` ${WORDS[rand() % WORDS.length]!}`;
    i += b.write(`${s}\n`, i, 'latin1');
  }
  return b;
}

/** One layer holding random.bin (incompressible) and text.bin (highly compressible), OCI tags on/off. */
async function shapesImage(): Promise<{ ociDir: string; layer: Layer }> {
  const src = join(DATA_DIR, 'shapes-src');
  const img = await verityImage(join(DATA_DIR, 'shapes-oci'), join(DATA_DIR, 'shapes-oci.json'), src, () => {
    mkdirSync(src, { recursive: true });
    const chunks = 16;
    const fd = openSync(join(src, 'random.bin'), 'w');
    try {
      for (let i = 0; i < chunks; i++) writeFileSync(fd, randomBytes(BIG / chunks));
    } finally {
      closeSync(fd);
    }
    writeFileSync(join(src, 'text.bin'), wordText(BIG));
    return [src];
  });
  const blob = img.blobs[0]!;
  return { ociDir: img.ociDir, layer: { blob, squashfsBytes: squashfsBytesOf(blob) } };
}

interface Shape {
  name: string;
  /** Which image's stacks read it. */
  image: 'std' | 'shapes';
  command: (mp: string) => string;
  bytes: number;
}

function treeBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? treeBytes(p) : statSync(p).size;
  }
  return n;
}

export interface ShapesResult {
  rows: RatioRow[];
  raw: Record<string, Record<string, number[]>>;
  rawServerCpu: Record<string, Record<string, number[]>>;
  loadavgBefore: number[];
  loadavgAfter: number[];
}

export async function benchShapes(runs = 3): Promise<ShapesResult> {
  if (process.getuid?.() !== 0) throw new BenchError('the data-shape benchmark needs root (mount, loop devices, drop_caches)');
  requireTools(['squashfuse_ll', 'fusermount3', 'dd', 'tar', 'mksquashfs', 'veritysetup']);
  const { src } = standardImage();
  const std = await verityLayer();
  const shapes = await shapesImage();
  const work = join(DATA_DIR, 'shapes-run');
  const mp = join(work, 'mp');
  const works = ['sf', 'k'].map((w) => join(work, w));
  clearStacks(mp, works);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(mp, { recursive: true });

  const stacksOf = (ociDir: string, layer: Layer, key: string): Stack[] => [
    atomfsMount(SHAPES_VERITY_TOOL, `${ociDir}:on`, join(work, `run-${key}`)),
    atomfsMount(SHAPES_UNVERIFIED_TOOL, `${ociDir}:off`, join(work, `run-${key}`), ['--allow-missing-verity']),
    atomfsSqfsMount('atomfs sqfs mount (verity off)', layer),
    squashfuseStack(SHAPES_SQUASHFUSE_TOOL, [layer], works[0]!),
    kernelStack('kernel squashfs (loop)', [layer], works[1]!),
  ];
  const stacks = {
    std: stacksOf(std.ociDir, { blob: std.blob, squashfsBytes: std.hashOffset }, 'std'),
    shapes: stacksOf(shapes.ociDir, shapes.layer, 'shapes'),
  };
  const dd = (file: string) => (m: string) => `dd if=${m}/${file} of=/dev/null bs=1M status=none`;
  const list: Shape[] = [
    { name: 'incompressible (random)', image: 'shapes', command: dd('random.bin'), bytes: BIG },
    { name: 'text-like (~2.5:1)', image: 'std', command: dd('big.bin'), bytes: statSync(join(src, 'big.bin')).size },
    { name: 'highly compressible (word lines)', image: 'shapes', command: dd('text.bin'), bytes: BIG },
    { name: 'many small files (tar of 19,800)', image: 'std', command: (m) => `tar -C ${m}/tree -cf - . | cat >/dev/null`, bytes: treeBytes(join(src, 'tree')) },
  ];

  const raw: ShapesResult['raw'] = {};
  const rawServerCpu: ShapesResult['rawServerCpu'] = {};
  const loadavgBefore = loadavg();
  try {
    for (let run = 0; run < runs; run++) {
      for (const s of list) {
        const ts = stacks[s.image];
        // Each round starts with a different target (this VM's speed drifts within a run).
        for (const t of [...ts.slice(run % ts.length), ...ts.slice(0, run % ts.length)]) {
          withMount(t, mp, () => {
            const pids = t.servers(mp);
            dropCaches();
            const cpu0 = pids.reduce((a, p) => a + cpuSeconds(p), 0);
            const r = timeShell(s.command(mp), `${t.tool}: ${s.name}`);
            const cpu = pids.reduce((a, p) => a + cpuSeconds(p), 0) - cpu0;
            ((raw[s.name] ??= {})[t.tool] ??= []).push(s.bytes / 1e6 / r.seconds);
            if (pids.length > 0) ((rawServerCpu[s.name] ??= {})[t.tool] ??= []).push(cpu);
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
  for (const s of list) {
    const v = (tool: string): number => median(raw[s.name]![tool]!);
    const ts = stacks[s.image];
    for (const t of ts) {
      const row: RatioRow = { workload: `${SHAPES_WORKLOAD_PREFIX}${s.name}`, tool: t.tool, value: v(t.tool), unit: 'MB/s' };
      if (t.ours) {
        row.speedup = { [SHAPES_SQUASHFUSE_TOOL]: v(t.tool) / v(SHAPES_SQUASHFUSE_TOOL), kernel: v(t.tool) / v('kernel squashfs (loop)') };
        if (t.tool === SHAPES_VERITY_TOOL) row.speedup['verity off'] = v(t.tool) / v(SHAPES_UNVERIFIED_TOOL);
      }
      rows.push(row);
    }
    for (const t of ts) {
      const cpu = rawServerCpu[s.name]?.[t.tool];
      if (cpu === undefined) continue;
      rows.push({ workload: `${SHAPES_WORKLOAD_PREFIX}${s.name}: server CPU`, tool: t.tool, value: median(cpu), unit: 's' });
    }
  }
  return { rows, raw, rawServerCpu, loadavgBefore, loadavgAfter };
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const r = await benchShapes(Number(process.env.RUNS ?? 3));
  printRatioTable(r.rows);
  const la = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');
  process.stdout.write(`load average before ${la(r.loadavgBefore)}, after ${la(r.loadavgAfter)}\n`);
}
