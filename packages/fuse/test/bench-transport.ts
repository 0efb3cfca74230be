/**
 * Transport benchmark (not a test): serves the in-memory bench tree (one big file whose
 * bytes cost CPU to produce, plus many small files) and measures
 *   - dd bs=1M of the big file (buffered, cold: a fresh mount has no page cache),
 *   - dd bs=1M iflag=direct, 4 readers in parallel (every byte goes through the server),
 *   - find small -type f | xargs stat (fresh mount: no dentry/attr cache)
 * for several readWorkers settings. Medians of --runs runs.
 *
 * node packages/fuse/dist/test/bench-transport.js [--runs 5] [--workers 0,2,3]
 *      [--size-mib 256] [--content inflate|pattern] [--readdirplus auto|always|never]
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FuseServer, type ReaddirplusMode } from '../src/index.js';
import { makeTempDir, MEMFS_MODULE, removeTempDir } from './helpers.js';
import { MiB, type MemFsOptions } from './memfs.js';

// `node --test dist/test/` runs every file here; only run when asked to.
if (process.argv.length <= 2 && process.env.FUSE_BENCH !== '1') process.exit(0);

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    workers: { type: 'string', default: '0,2,3' },
    'size-mib': { type: 'string', default: '256' },
    content: { type: 'string', default: 'inflate' },
    readdirplus: { type: 'string', default: 'auto' },
    dirs: { type: 'string', default: '200' },
    'files-per-dir': { type: 'string', default: '100' },
  },
});

const runs = Number(values.runs);
const sizeMiB = Number(values['size-mib']);
const options: MemFsOptions = {
  preset: 'bench',
  bench: { bigFileSize: sizeMiB * MiB, dirs: Number(values.dirs), filesPerDir: Number(values['files-per-dir']), content: values.content as 'inflate' | 'pattern' },
};

function sh(script: string): Promise<{ out: string; seconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) reject(new Error(`${script}: exit ${code}: ${out}`));
      else resolve({ out, seconds });
    });
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Server-side cost of the measured part: CPU seconds (all threads) and minor page faults. */
const cost = new Map<string, { cpu: number; faults: number; n: number }>();

async function withMount<T>(readWorkers: number, fn: (mp: string) => Promise<T>, label = ''): Promise<T> {
  const dir = makeTempDir('atomfs-fuse-bench-');
  const mp = join(dir, 'mnt');
  mkdirSync(mp);
  const server = await FuseServer.mount({ mountpoint: mp, fs: { module: MEMFS_MODULE, options }, readWorkers, readdirplus: values.readdirplus as ReaddirplusMode });
  const before = process.resourceUsage();
  try {
    return await fn(mp);
  } finally {
    const after = process.resourceUsage();
    const key = `${label} rw${readWorkers}`;
    const c = cost.get(key) ?? { cpu: 0, faults: 0, n: 0 };
    c.cpu += (after.userCPUTime + after.systemCPUTime - before.userCPUTime - before.systemCPUTime) / 1e6;
    c.faults += after.minorPageFault - before.minorPageFault;
    c.n++;
    cost.set(key, c);
    await server.unmount();
    await removeTempDir(dir);
  }
}

const bytes = sizeMiB * MiB;
console.log(`bench: ${sizeMiB} MiB ${values.content} file, ${Number(values.dirs) * Number(values['files-per-dir'])} small files, readdirplus ${values.readdirplus}, ${runs} runs, load ${(await sh('cat /proc/loadavg')).out.trim()}`);
// Round-robin over the settings within each run, so that load changes on a shared machine
// hit every setting alike.
const settings = values.workers.split(',').map(Number);
const dd = new Map<number, number[]>(settings.map((w) => [w, []]));
const direct = new Map<number, number[]>(settings.map((w) => [w, []]));
const stat = new Map<number, number[]>(settings.map((w) => [w, []]));
for (let r = 0; r < runs; r++) {
  for (const w of settings) {
    dd.get(w)!.push(await withMount(w, async (mp) => bytes / 1e6 / (await sh(`dd if=${mp}/big of=/dev/null bs=1M status=none`)).seconds, 'dd'));
    direct.get(w)!.push(
      await withMount(w, async (mp) => {
        // 4 readers, each a quarter of the file, O_DIRECT: no page cache, no readahead.
        const q = sizeMiB / 4;
        const parts = [0, 1, 2, 3].map((i) => `dd if=${mp}/big of=/dev/null bs=1M iflag=direct skip=${i * q} count=${q} status=none &`).join(' ');
        return bytes / 1e6 / (await sh(`${parts} wait`)).seconds;
      }, 'direct'),
    );
    stat.get(w)!.push(await withMount(w, async (mp) => (await sh(`cd ${mp} && find small -type f -print0 | xargs -0 stat > /dev/null`)).seconds, 'stat'));
  }
}
const fmt = (xs: number[], digits: number): string => `${median(xs).toFixed(digits)} [${xs.map((x) => x.toFixed(digits)).join(' ')}]`;
for (const w of settings) {
  console.log(`readWorkers ${w}: dd bs=1M MB/s ${fmt(dd.get(w)!, 0)}; O_DIRECT x4 MB/s ${fmt(direct.get(w)!, 0)}; find+stat s ${fmt(stat.get(w)!, 2)}`);
}
for (const [key, c] of cost) console.log(`server cost ${key}: ${(c.cpu / c.n).toFixed(2)} CPU s, ${Math.round(c.faults / c.n)} minor faults per run`);
console.log(`load after: ${(await sh('cat /proc/loadavg')).out.trim()}`);
