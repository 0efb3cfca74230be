/**
 * Driving `bin/atomfs sqfs mount` as a user would (the real CLI, detached server) and checking
 * what it leaves behind: mounts, server processes, files in its TMPDIR.
 */
import assert from 'node:assert/strict';
import { closeSync, lstatSync, openSync, readdirSync, readFileSync, readSync, type BigIntStats } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import {
  isMounted,
  keyToPath,
  readMountinfo,
  run,
  sleepSync,
  trackMount,
  unmountSync,
  type CleanupStack,
  type RunResult,
  type Snapshot,
} from './lib/index.js';

/** The CLI entry (this file runs from test/dist/). */
export const ATOMFS = fileURLToPath(new URL('../../bin/atomfs', import.meta.url));

/** argv of a process, from /proc (undefined if it is gone or unreadable). */
function cmdline(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`);
    if (raw.length === 0) return undefined; // zombie or kernel thread
    return raw.toString('utf8').replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

/**
 * PIDs of `atomfs sqfs mount` processes (clients and detached servers) whose command line
 * mentions a path under `dir`. Other test files and people may run their own servers at the same
 * time, so a global `pgrep -f "sqfs mount"` would be wrong here; this is that pgrep, narrowed to
 * our own paths.
 */
export function sqfsMountProcesses(dir: string): number[] {
  const d = resolve(dir);
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const argv = cmdline(Number(name));
    if (!argv) continue;
    const i = argv.indexOf('sqfs');
    if (i < 0 || argv[i + 1] !== 'mount') continue;
    if (argv.some((a) => a === d || a.startsWith(d + '/'))) out.push(Number(name));
  }
  return out;
}

/** The detached server of mountpoint `mp` (the `--foreground` child the CLI started). */
export function serverPid(mp: string): number | undefined {
  const abs = resolve(mp);
  for (const pid of sqfsMountProcesses(abs)) {
    const argv = cmdline(pid);
    if (argv && argv.includes('--foreground') && argv.includes(abs)) return pid;
  }
  return undefined;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); it has exited for our purposes.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Wait until `pid` has exited; false on timeout. */
export async function waitForExit(pid: number, timeoutMs = 10_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (!processAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !processAlive(pid);
}

export function mountsUnder(dir: string): string[] {
  const d = resolve(dir);
  return readMountinfo()
    .map((m) => m.mountpoint)
    .filter((mp) => mp === d || mp.startsWith(d + '/'));
}

export interface CliEnv {
  /** TMPDIR for the CLI: where the detached server puts its default log dir. */
  tmpdir: string;
}

/** Run `atomfs ARGS` (never throws on a non-zero exit; the caller checks). */
export function atomfs(args: readonly string[], env: CliEnv, timeoutMs = 60_000): Promise<RunResult> {
  return run([process.execPath, ATOMFS, ...args], { allowFail: true, timeoutMs, env: { ...process.env, TMPDIR: env.tmpdir } });
}

function text(r: RunResult): string {
  return `exit ${r.status ?? r.signal}\nstdout: ${r.stdout.toString('utf8')}\nstderr: ${r.stderr.toString('utf8')}`;
}

export interface MountedServer {
  mp: string;
  pid: number;
}

/**
 * `atomfs sqfs mount [extra] IMAGE MP`, asserted to succeed and to leave a running server.
 * Cleanup (registered on `stack`): unmount if still mounted, then make sure the server is gone
 * (SIGKILL after 10 s, reported as an error, so a stuck server fails the test instead of leaking).
 */
export async function mountOurs(image: string, mp: string, extra: readonly string[], env: CliEnv, stack: CleanupStack): Promise<MountedServer> {
  const abs = resolve(mp);
  trackMount(abs);
  let pid: number | undefined;
  stack.add(`atomfs mount ${abs}`, () => {
    if (isMounted(abs)) unmountSync(abs);
    const p = pid ?? serverPid(abs);
    if (p === undefined) return;
    for (let i = 0; i < 100 && processAlive(p); i++) sleepSync(100);
    if (processAlive(p)) {
      process.kill(p, 'SIGKILL');
      throw new Error(`server ${p} of ${abs} did not exit after unmount; killed`);
    }
  });
  const r = await atomfs(['sqfs', 'mount', ...extra, image, abs], env);
  assert.equal(r.status, 0, `atomfs sqfs mount failed: ${text(r)}`);
  assert.equal(r.stdout.length, 0, 'mount prints nothing on success');
  assert.ok(isMounted(abs), `${abs} is mounted once the command returned`);
  pid = serverPid(abs);
  assert.ok(pid !== undefined, `a detached server runs for ${abs}`);
  assert.ok(processAlive(pid));
  return { mp: abs, pid };
}

/** Assert an atomfs invocation failed the way the CLI promises: exit 1, one line "Error: ...". */
export function assertOneLineError(r: RunResult, pattern: RegExp): void {
  assert.equal(r.status, 1, text(r));
  const err = r.stderr.toString('utf8');
  assert.match(err, /^Error: [^\n]+\n$/, `exactly one line on stderr: ${JSON.stringify(err)}`);
  assert.match(err, pattern);
  assert.equal(r.stdout.length, 0, 'nothing on stdout');
}

/** lstat fields a snapshot does not record, per path key. */
export interface StatExtras {
  ino: bigint;
  blocks: bigint;
  blksize: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export function statExtras(root: string, snap: Snapshot): Map<string, StatExtras> {
  const out = new Map<string, StatExtras>();
  for (const k of snap.keys()) {
    const st: BigIntStats = lstatSync(keyToPath(root, k), { bigint: true });
    out.set(k, { ino: st.ino, blocks: st.blocks, blksize: st.blksize, atimeNs: st.atimeNs, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs });
  }
  return out;
}

/** Differences of the extra lstat fields, `ignore` left out. */
export function compareExtras(expected: Map<string, StatExtras>, actual: Map<string, StatExtras>, ignore: ReadonlyArray<keyof StatExtras>): string[] {
  const diffs: string[] = [];
  for (const [k, e] of expected) {
    const a = actual.get(k);
    if (!a) {
      diffs.push(`${k}: missing`);
      continue;
    }
    for (const f of Object.keys(e) as Array<keyof StatExtras>) {
      if (!ignore.includes(f) && e[f] !== a[f]) diffs.push(`${k}: ${f} expected ${e[f]}, got ${a[f]}`);
    }
    if (diffs.length > 50) break;
  }
  return diffs;
}

/** pread through an fd, looping over short reads until `length` bytes or EOF. */
export function preadFully(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}

export function withFd<T>(path: Buffer | string, flags: number | string, fn: (fd: number) => T): T {
  const fd = openSync(path, flags);
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * (offset, length) pairs that straddle the places where squashfs reading changes mode: every
 * block boundary near the start and the end, the start of the tail (which lives in a fragment
 * unless the file ends on a block boundary), the end of file, and odd random spots.
 */
export function trickyRanges(size: number, blockSize: number, seed: number): Array<[number, number]> {
  const r: Array<[number, number]> = [];
  const add = (off: number, len: number): void => {
    if (off < 0) {
      len += off;
      off = 0;
    }
    if (len > 0) r.push([off, len]);
  };
  const lastBoundary = Math.floor(size / blockSize) * blockSize;
  const boundaries = new Set<number>();
  for (let i = 1; i <= 3; i++) boundaries.add(i * blockSize);
  for (let i = 0; i <= 2; i++) boundaries.add(lastBoundary - i * blockSize);
  for (const b of boundaries) {
    if (b <= 0 || b > size) continue;
    add(b - 1, 2);
    add(b - 3, 7);
    add(b - 4097, 8195);
    add(b + 1, 5);
  }
  add(0, 1);
  add(1, 4094);
  add(size - 1, 1);
  add(size - 2, 7); // short read at EOF
  add(size, 3); // at EOF: 0 bytes
  add(size + 1000, 10); // past EOF: 0 bytes
  if (size < 4 * 1024 * 1024) add(0, size + 17); // the whole file in one call
  let x = (seed * 2654435761) >>> 0 || 1;
  const rand = (n: number): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % Math.max(1, n);
  };
  for (let i = 0; i < 6; i++) add(rand(size + 1), 1 + rand(3 * blockSize) | 1);
  return r;
}
