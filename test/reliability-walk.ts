/**
 * Tree walker for the reliability tests, run in a worker thread (walkInWorker in
 * reliability-common.ts) or as a child process (`node reliability-walk.js ROOT [JSON options]`),
 * so a FUSE request that never gets an answer blocks that thread, not the test runner: on timeout
 * the test reports a hang and kills the server, which fails the pending request. It lstat()s every entry, lists every
 * directory, reads every symlink and every regular file (bounded), and prints one JSON summary
 * (WalkSummary) on stdout. Errors are counted by errno code; the caller decides which are fine.
 */
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

export interface WalkOptions {
  /** Entries whose name starts with one of these are not visited (Buffer-safe: latin1 compare). */
  skipPrefixes?: string[];
  maxDepth?: number;
  maxEntries?: number;
  /** Bytes read per file at most (a corrupt size can claim exabytes). */
  maxFileBytes?: number;
  /** Record a sha256 per regular file (path → hash) in `hashes`. */
  hashes?: boolean;
  /** Record every directory listed (relative paths) in `dirPaths`. */
  dirPaths?: boolean;
}

export interface WalkSummary {
  entries: number;
  dirs: number;
  files: number;
  symlinks: number;
  others: number;
  bytesRead: number;
  /** errno code (EIO, ENOENT, ...) → count. */
  errors: Record<string, number>;
  /** The first few failures, "op path: code". */
  samples: string[];
  /** Regular files read completely and without error (latin1 paths relative to ROOT). */
  goodFiles: string[];
  hashes?: Record<string, string>;
  dirPaths?: string[];
  truncated: boolean;
}

const CHUNK = 1 << 20;

export function walk(root: string, o: WalkOptions = {}): WalkSummary {
  const maxDepth = o.maxDepth ?? 64;
  const maxEntries = o.maxEntries ?? 100_000;
  const maxFileBytes = o.maxFileBytes ?? 16 << 20;
  const skip = (o.skipPrefixes ?? []).map((p) => Buffer.from(p, 'latin1'));
  const s: WalkSummary = { entries: 0, dirs: 0, files: 0, symlinks: 0, others: 0, bytesRead: 0, errors: {}, samples: [], goodFiles: [], truncated: false };
  if (o.hashes) s.hashes = {};
  if (o.dirPaths) s.dirPaths = [];
  const buf = Buffer.alloc(CHUNK);
  const fail = (op: string, path: Buffer, err: unknown): void => {
    const code = (err as NodeJS.ErrnoException).code ?? `non-errno ${(err as Error).message}`;
    s.errors[code] = (s.errors[code] ?? 0) + 1;
    if (s.samples.length < 20) s.samples.push(`${op} ${path.toString('latin1')}: ${code}`);
  };
  const rel = (p: Buffer): string => p.subarray(root.length).toString('latin1') || '/';

  const visit = (path: Buffer, depth: number): void => {
    if (s.entries >= maxEntries) {
      s.truncated = true;
      return;
    }
    s.entries++;
    let st;
    try {
      st = lstatSync(path);
    } catch (err) {
      fail('lstat', path, err);
      return;
    }
    if (st.isDirectory()) {
      s.dirs++;
      if (depth >= maxDepth) {
        s.truncated = true;
        return;
      }
      let names: Buffer[];
      try {
        names = readdirSync(path, { encoding: 'buffer' });
      } catch (err) {
        fail('readdir', path, err);
        return;
      }
      s.dirPaths?.push(rel(path));
      for (const name of names) {
        if (skip.some((p) => name.subarray(0, p.length).equals(p))) continue;
        visit(Buffer.concat([path, Buffer.from('/'), name]), depth + 1);
      }
    } else if (st.isSymbolicLink()) {
      s.symlinks++;
      try {
        readlinkSync(path, { encoding: 'buffer' });
      } catch (err) {
        fail('readlink', path, err);
      }
    } else if (st.isFile()) {
      s.files++;
      let fd: number;
      try {
        fd = openSync(path, 'r');
      } catch (err) {
        fail('open', path, err);
        return;
      }
      const hash = o.hashes ? createHash('sha256') : undefined;
      try {
        let total = 0;
        for (;;) {
          const want = Math.min(CHUNK, maxFileBytes - total);
          if (want <= 0) break;
          const n = readSync(fd, buf, 0, want, total);
          if (n === 0) break;
          hash?.update(buf.subarray(0, n));
          total += n;
          s.bytesRead += n;
        }
        s.goodFiles.push(rel(path));
        if (hash && s.hashes) s.hashes[rel(path)] = hash.digest('hex');
      } catch (err) {
        fail('read', path, err);
      } finally {
        closeSync(fd);
      }
    } else {
      s.others++;
    }
  };
  visit(Buffer.from(root, 'latin1'), 0);
  return s;
}

// As a worker thread (walkInWorker): walk workerData and post the summary.
if (!isMainThread && (workerData as { walkRoot?: string } | null)?.walkRoot !== undefined) {
  const d = workerData as { walkRoot: string; options: WalkOptions };
  parentPort!.postMessage(walk(d.walkRoot, d.options));
} else if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  // As a script: node reliability-walk.js ROOT [OPTIONS_JSON]
  const root = process.argv[2];
  if (root === undefined) {
    process.stderr.write('usage: reliability-walk.js ROOT [OPTIONS_JSON]\n');
    process.exit(2);
  }
  const opts = process.argv[3] !== undefined ? (JSON.parse(process.argv[3]) as WalkOptions) : {};
  process.stdout.write(JSON.stringify(walk(root, opts)) + '\n');
}
