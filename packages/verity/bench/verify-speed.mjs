#!/usr/bin/env node
// Full-verification speed: verifyAll / verifyAllSync vs `veritysetup verify`, same file, same run,
// interleaved so background load hits all of them alike. Needs a build (tsc -b packages/verity).
//   node packages/verity/bench/verify-speed.mjs [MiB=256] [reps=5]
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, writeSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileByteSource, formatVerity, verifyAll, verifyAllSync } from '../dist/src/index.js';

const mib = Number(process.argv[2] ?? 256);
const reps = Number(process.argv[3] ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'atomfs-verity-bench-'));
try {
  const img = join(dir, 'layer.img');
  const H = mib * 1024 * 1024;
  const fd = openSync(img, 'w');
  const chunk = randomBytes(1 << 20);
  for (let i = 0; i < mib; i++) {
    chunk[0] = i & 0xff;
    writeSync(fd, chunk);
  }
  closeSync(fd);
  const t0 = performance.now();
  const { rootHash } = await formatVerity(img, { hashOffset: H });
  console.log(`formatVerity: ${(H / 1e6 / ((performance.now() - t0) / 1000)).toFixed(0)} MB/s`);

  const runs = {
    'veritysetup verify': () => {
      const r = spawnSync('veritysetup', ['verify', img, img, rootHash, `--hash-offset=${H}`]);
      if (r.status !== 0) throw new Error('veritysetup verify failed');
    },
    'verifyAllSync (1 thread)': () => {
      const src = new FileByteSource(img);
      try {
        verifyAllSync(src, { hashOffset: H, rootHash });
      } finally {
        src.close();
      }
    },
    'verifyAll (default threads)': async () => {
      const src = new FileByteSource(img);
      try {
        await verifyAll(src, { hashOffset: H, rootHash });
      } finally {
        src.close();
      }
    },
  };
  const times = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
  for (let r = 0; r < reps; r++) {
    for (const [name, fn] of Object.entries(runs)) {
      const t = performance.now();
      await fn();
      times[name].push(performance.now() - t);
    }
  }
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const base = median(times['veritysetup verify']);
  for (const [name, t] of Object.entries(times)) {
    const m = median(t);
    console.log(
      `${name.padEnd(28)} median ${m.toFixed(0).padStart(5)} ms  ${(H / 1e6 / (m / 1000)).toFixed(0).padStart(5)} MB/s  ` +
        `x${(base / m).toFixed(2)} of veritysetup   runs: ${t.map((x) => x.toFixed(0)).join(' ')}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
