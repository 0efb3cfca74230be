/**
 * One reader of the load test (test/reliability-load.test.ts), run as a worker thread. Until
 * `endAt` it picks, with its own seeded PRNG: a whole file read with O_DIRECT (so every byte comes
 * from the FUSE server, not the page cache) checked against the kernel overlay's sha256; a random
 * range read with O_DIRECT compared byte for byte with the same range read through the kernel
 * overlay; or a directory listing + lstat of every entry compared with the kernel's. It posts a
 * ReaderStats summary when done.
 */
import { closeSync, constants, lstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { Prng } from './lib/content.js';

export interface ReaderFile {
  /** Path relative to both roots, starting with "/". */
  rel: string;
  size: number;
  sha256: string;
}

export interface ReaderJob {
  fuseRoot: string;
  kernelRoot: string;
  files: ReaderFile[];
  dirs: string[];
  endAt: number;
  seed: number;
}

export interface ReaderStats {
  ops: number;
  fullReads: number;
  rangeReads: number;
  listings: number;
  bytes: number;
  /** Anything that differs from the kernel overlay (must stay empty). */
  mismatches: string[];
  /** errno code → count (must stay empty: the image is intact). */
  errors: Record<string, number>;
}

const CHUNK = 1 << 20;

function run(job: ReaderJob): ReaderStats {
  const s: ReaderStats = { ops: 0, fullReads: 0, rangeReads: 0, listings: 0, bytes: 0, mismatches: [], errors: {} };
  const rand = new Prng(job.seed);
  const buf = Buffer.alloc(CHUNK);
  const ref = Buffer.alloc(CHUNK);
  const mismatch = (m: string): void => {
    if (s.mismatches.length < 20) s.mismatches.push(m);
  };
  const fail = (op: string, err: unknown): void => {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    s.errors[code] = (s.errors[code] ?? 0) + 1;
    mismatch(`${op}: ${code}`);
  };
  while (Date.now() < job.endAt) {
    s.ops++;
    const pick = rand.below(100);
    if (pick < 85 && job.files.length > 0) {
      const f = job.files[rand.below(job.files.length)]!;
      let fd: number;
      try {
        fd = openSync(join(job.fuseRoot, f.rel), constants.O_RDONLY | constants.O_DIRECT);
      } catch (err) {
        fail(`open ${f.rel}`, err);
        continue;
      }
      try {
        if (pick < 45) {
          s.fullReads++;
          const h = createHash('sha256');
          let pos = 0;
          for (;;) {
            const n = readSync(fd, buf, 0, CHUNK, pos);
            if (n === 0) break;
            h.update(buf.subarray(0, n));
            pos += n;
          }
          s.bytes += pos;
          if (pos !== f.size || h.digest('hex') !== f.sha256) mismatch(`${f.rel}: ${pos} bytes, hash differs from the kernel's`);
        } else {
          s.rangeReads++;
          const off = f.size === 0 ? 0 : rand.below(f.size);
          const len = 1 + rand.below(CHUNK);
          const n = readSync(fd, buf, 0, len, off);
          s.bytes += n;
          const kfd = openSync(join(job.kernelRoot, f.rel), 'r');
          let k = 0;
          try {
            k = readSync(kfd, ref, 0, len, off);
          } finally {
            closeSync(kfd);
          }
          if (n !== k || !buf.subarray(0, n).equals(ref.subarray(0, k))) mismatch(`${f.rel} [${off}, +${len}): ${n} bytes vs kernel ${k}, or other bytes`);
        }
      } catch (err) {
        fail(`read ${f.rel}`, err);
      } finally {
        closeSync(fd);
      }
    } else if (job.dirs.length > 0) {
      s.listings++;
      const d = job.dirs[rand.below(job.dirs.length)]!;
      try {
        const ours = readdirSync(join(job.fuseRoot, d)).sort();
        const theirs = readdirSync(join(job.kernelRoot, d)).sort();
        if (ours.join('\0') !== theirs.join('\0')) {
          mismatch(`readdir ${d}: ${ours.length} entries vs kernel ${theirs.length}`);
          continue;
        }
        for (const name of ours) {
          const a = lstatSync(join(job.fuseRoot, d, name));
          const b = lstatSync(join(job.kernelRoot, d, name));
          if (a.mode !== b.mode || (a.isFile() && a.size !== b.size) || a.mtimeMs !== b.mtimeMs || a.uid !== b.uid || a.gid !== b.gid) {
            mismatch(`lstat ${d}/${name}: mode ${a.mode.toString(8)}/${b.mode.toString(8)} size ${a.size}/${b.size} mtime ${a.mtimeMs}/${b.mtimeMs}`);
          }
        }
      } catch (err) {
        fail(`list ${d}`, err);
      }
    }
  }
  return s;
}

if (parentPort !== null && (workerData as { fuseRoot?: string } | null)?.fuseRoot !== undefined) {
  parentPort.postMessage(run(workerData as ReaderJob));
}
