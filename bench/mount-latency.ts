/**
 * Cold mount-to-first-`ls` latency of a 3-layer stacker-format image (zstd squashfs layers with
 * dm-verity data appended, root hashes in the manifest): wall seconds from the start of the mount
 * command until `ls` of the merged root returns, caches dropped before each run, one fresh mount
 * per run, targets interleaved, medians of RUNS.
 *   - ours:  `atomfs mount --backend fuse OCIDIR:on MP && ls MP` (verity on: the root hashes are
 *            checked at mount, every block read after that)
 *   - peer:  3× `squashfuse_ll LAYER Mi` + `mount -t overlay -o lowerdir=M3:M2:M1` + ls
 *   - kernel: `atomfs mount --backend kernel` cannot check root hashes without device-mapper (it
 *            refuses them), so it mounts the same blobs without annotations
 *            (`--allow-missing-verity OCIDIR:off`, verity off); and the same done by a plain shell
 *            script (3× mount -o loop + overlayfs) to show the CLI's own share.
 * Needs root.
 *
 *   node bench/dist/mount-latency.js
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prng } from '@atomfs/testkit';
import { compressible, DATA_DIR, dropCaches, median, printRatioTable, type RatioRow } from './lib.js';
import { verityImage, type OciImage } from './oci-layers.js';
import { ATOMFS, BenchError, atomfsServerPid, clearStaleMount, requireTools, sh, squashfuseDaemons, timeShell, waitGone } from './proc.js';

function writeFiles(root: string, rand: () => number, dirs: number, perDir: number, prefix: string): void {
  for (let d = 0; d < dirs; d++) {
    const dir = join(root, `${prefix}${d}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < perDir; f++) writeFileSync(join(dir, `f${f}`), compressible(rand, 200 + (rand() % 8000)));
  }
}

/**
 * Three layers like a small distro image and two application layers on top: a 5,000-file base
 * with a 16 MiB library, 1,000 new files and 100 replaced base files, then 200 config files, an
 * 8 MiB binary and 10 more replacements.
 */
function layerDirs(): string[] {
  const root = join(DATA_DIR, 'layers3-src');
  rmSync(root, { recursive: true, force: true });
  const rand = prng(11);
  const [base, mid, top] = ['base', 'mid', 'top'].map((n) => join(root, n)) as [string, string, string];
  writeFiles(join(base, 'usr', 'lib'), rand, 50, 100, 'd');
  writeFileSync(join(base, 'usr', 'lib', 'libbig.so'), compressible(rand, 16 << 20));
  mkdirSync(join(base, 'etc'), { recursive: true });
  writeFileSync(join(base, 'etc', 'os-release'), 'NAME=bench\n');
  writeFiles(join(mid, 'usr', 'share'), rand, 10, 100, 's');
  writeFiles(join(mid, 'usr', 'lib'), rand, 10, 10, 'd');
  writeFiles(join(top, 'etc', 'app'), rand, 4, 50, 'c');
  mkdirSync(join(top, 'opt', 'app', 'bin'), { recursive: true });
  writeFileSync(join(top, 'opt', 'app', 'bin', 'app'), compressible(rand, 8 << 20));
  writeFiles(join(top, 'usr', 'lib'), rand, 1, 10, 'd');
  return [base, mid, top];
}

export async function threeLayerImage(): Promise<OciImage> {
  return verityImage(join(DATA_DIR, 'layers3-oci'), join(DATA_DIR, 'layers3-oci.json'), join(DATA_DIR, 'layers3-src'), layerDirs);
}

interface LatencyTarget {
  tool: string;
  ours?: boolean;
  /** Mount + ls, one shell script. */
  script: string;
  unmount(): void;
}

export interface LatencyResult {
  rows: RatioRow[];
  raw: Record<string, number[]>;
}

export async function benchMountLatency(runs = 5): Promise<LatencyResult> {
  if (process.getuid?.() !== 0) throw new BenchError('the mount latency benchmark needs root');
  requireTools(['squashfuse_ll', 'fusermount3', 'mksquashfs', 'veritysetup']);
  const img = await threeLayerImage();
  if (img.blobs.length !== 3) throw new BenchError(`expected 3 layers, got ${img.blobs.length}`);
  const work = join(DATA_DIR, 'latency-run');
  const mp = join(work, 'mp');
  const runDir = join(work, 'run');
  const lowers = img.blobs.map((_, i) => join(work, `l${i}`));
  for (const d of [mp, ...lowers]) {
    clearStaleMount(d);
  }
  rmSync(work, { recursive: true, force: true });
  for (const d of [mp, ...lowers]) mkdirSync(d, { recursive: true });
  const node = process.execPath;
  const lowerdir = [...lowers].reverse().join(':');

  const atomfsUmount = (): void => {
    sh([node, ATOMFS, 'umount', '--metadir', runDir, mp], 'atomfs umount');
  };
  const targets: LatencyTarget[] = [
    {
      tool: 'atomfs mount --backend fuse (verity on) + ls',
      ours: true,
      // The command as a user runs it (its #! line), not `node bin/atomfs`.
      script: `${ATOMFS} mount --backend fuse --metadir ${runDir} ${img.ociDir}:on ${mp} && ls ${mp}`,
      unmount: () => {
        const server = atomfsServerPid(runDir);
        atomfsUmount();
        waitGone([server], 'atomfs server');
      },
    },
    {
      tool: 'squashfuse_ll x3 + overlayfs + ls',
      script: `${img.blobs.map((b, i) => `squashfuse_ll ${b} ${lowers[i]}`).join(' && ')} && mount -t overlay overlay -o ro,lowerdir=${lowerdir} ${mp} && ls ${mp}`,
      unmount: () => {
        sh(['umount', mp], 'umount overlay');
        const daemons = lowers.flatMap(squashfuseDaemons);
        for (const l of lowers) sh(['fusermount3', '-u', l], 'fusermount3 -u');
        waitGone(daemons, 'squashfuse_ll');
      },
    },
    {
      tool: 'atomfs mount --backend kernel (verity off) + ls',
      script: `${ATOMFS} mount --backend kernel --allow-missing-verity --metadir ${runDir} ${img.ociDir}:off ${mp} && ls ${mp}`,
      unmount: atomfsUmount,
    },
    {
      tool: 'kernel: loop x3 + overlayfs by sh (verity off) + ls',
      script: `${img.blobs.map((b, i) => `mount -t squashfs -o loop,ro ${b} ${lowers[i]}`).join(' && ')} && mount -t overlay overlay -o ro,lowerdir=${lowerdir} ${mp} && ls ${mp}`,
      unmount: () => {
        sh(['umount', mp], 'umount overlay');
        for (const l of lowers) sh(['umount', l], 'umount layer');
      },
    },
  ];

  const raw: Record<string, number[]> = {};
  let listing: string | undefined;
  try {
    for (let run = 0; run < runs; run++) {
      for (const t of targets) {
        dropCaches();
        let r: { seconds: number; stdout: string } | undefined;
        try {
          r = timeShell(t.script, t.tool, 120_000);
        } finally {
          // Undo whatever part of the script got mounted, even when it failed half-way (then the
          // script's error is the one to report, not the unmount's).
          try {
            t.unmount();
          } catch (err) {
            if (r !== undefined) throw err;
          } finally {
            for (const d of [mp, ...lowers]) clearStaleMount(d);
          }
        }
        if (listing !== undefined && r.stdout !== listing) throw new BenchError(`${t.tool} lists ${JSON.stringify(r.stdout)}, others ${JSON.stringify(listing)}`);
        listing = r.stdout;
        (raw[t.tool] ??= []).push(r.seconds);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const v = (t: LatencyTarget): number => median(raw[t.tool]!);
  const rows: RatioRow[] = targets.map((t) => ({
    workload: 'cold mount + first ls, 3-layer image',
    tool: t.tool,
    value: v(t),
    unit: 's',
    // squashfuse_ll: the x3 + overlayfs row; kernel: the plain shell row; and our own kernel path.
    ...(t.ours ? { speedup: { squashfuse_ll: v(targets[1]!) / v(t), kernel: v(targets[3]!) / v(t), 'atomfs --backend kernel': v(targets[2]!) / v(t) } } : {}),
  }));
  return { rows, raw };
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const r = await benchMountLatency(Number(process.env.RUNS ?? 5));
  printRatioTable(r.rows);
}
