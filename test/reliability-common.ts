/**
 * Shared pieces of the reliability tests (test/reliability-*.test.ts, test/fuzz-mount.test.ts):
 * running the real CLI, finding and watching its server processes (/proc), building stacker-format
 * layers (mksquashfs + veritysetup) and OCI layouts, walking a mount in a killable child process,
 * and cleanup that leaves no mount, server or metadir behind even when a test fails.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { writeLayout } from '@atomfs/oci';
import { isMounted, metadirName, readMountinfo, run, runSync, sleepSync, trackMount, type CleanupStack, type RunResult } from './lib/index.js';
import { walk, type WalkOptions, type WalkSummary } from './reliability-walk.js';

/** The CLI entry and the walker script (these files run from test/dist/). */
export const ATOMFS = fileURLToPath(new URL('../../bin/atomfs', import.meta.url));
export const WALKER = fileURLToPath(new URL('./reliability-walk.js', import.meta.url));

export class ReliabilityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

// ---- the CLI --------------------------------------------------------------------------------

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** argv put in front of `node bin/atomfs` (e.g. prlimit, runuser + unshare). */
  prefix?: readonly string[];
}

/** Run `atomfs ARGS`; never throws on a non-zero exit (the caller checks). */
export function atomfs(args: readonly string[], o: CliOptions = {}): Promise<RunResult> {
  // --metadir is how these tests place metadata; ATOMFS_TEST_RUN_DIR would override it.
  const env: NodeJS.ProcessEnv = { ...process.env, ...(o.env ?? {}) };
  if (o.env?.ATOMFS_TEST_RUN_DIR === undefined) delete env.ATOMFS_TEST_RUN_DIR;
  return run([...(o.prefix ?? []), process.execPath, ATOMFS, ...args], { allowFail: true, timeoutMs: o.timeoutMs ?? 60_000, env });
}

export function describe(r: RunResult): string {
  return `exit ${r.status ?? r.signal}; stdout: ${JSON.stringify(r.stdout.toString('utf8').slice(0, 2000))}; stderr: ${JSON.stringify(r.stderr.toString('utf8').slice(0, 2000))}`;
}

/**
 * The CLI's error contract: exit 1 and exactly one line on stderr starting with "Error: " (no
 * stack trace, no node internals).
 */
export function assertOneLineError(r: RunResult, what: string): string {
  const err = r.stderr.toString('utf8');
  const lines = err.split('\n').filter((l) => l !== '');
  if (r.status !== 1 || lines.length !== 1 || !lines[0]!.startsWith('Error: ') || /\n\s+at /.test(err)) {
    throw new ReliabilityError(`${what}: expected exit 1 with one "Error: " line, got ${describe(r)}`);
  }
  return lines[0]!;
}

// ---- processes ------------------------------------------------------------------------------

function cmdline(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`);
    if (raw.length === 0) return undefined;
    return raw.toString('utf8').replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

/** Running (not gone, not a zombie: init here reaps detached servers late). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** A field of /proc/PID/status in KiB (VmRSS, VmHWM, ...); undefined when the process is gone. */
export function statusKiB(pid: number, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system, all threads) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5), counted from the state (field 3) here; in clock ticks (100/s on Linux).
  return (Number(f[11]) + Number(f[12])) / 100;
}

export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * atomfs server processes (`atomfs __serve`, `atomfs sqfs mount`) whose command line names a path
 * under `dir`: `pgrep -f "atomfs __serve|sqfs mount"` narrowed to one test's own temp dir, since
 * other test files run their own servers at the same time.
 */
export function serversUnder(dir: string): number[] {
  const d = resolve(dir);
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const argv = cmdline(pid);
    if (argv === undefined || !alive(pid)) continue;
    const i = argv.findIndex((a) => a === '__serve' || a === 'sqfs');
    if (i < 0 || (argv[i] === 'sqfs' && argv[i + 1] !== 'mount')) continue;
    if (argv.some((a) => a === d || a.startsWith(d + '/'))) out.push(pid);
  }
  return out;
}

export function mountsUnder(dir: string): string[] {
  const d = resolve(dir);
  return readMountinfo()
    .map((m) => m.mountpoint)
    .filter((mp) => mp === d || mp.startsWith(d + '/'));
}

/** The pid of the `atomfs sqfs mount --foreground` server serving `mp`. */
export function sqfsServerPid(mp: string): number | undefined {
  const abs = resolve(mp);
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const argv = cmdline(Number(name));
    if (argv && argv.includes('--foreground') && argv.includes(abs) && argv.includes('sqfs')) return Number(name);
  }
  return undefined;
}

// ---- atomfs mount metadata --------------------------------------------------------------------

/** The metadir of a target: <run>/meta/<mntns>/<systemd-escape --path target>. */
export function metadirOf(runDir: string, target: string, mntns = readMountNs()): string {
  return join(runDir, 'meta', mntns, metadirName(resolve(target)));
}

export function readMountNs(pid: number | 'self' = 'self'): string {
  return readlinkSync(`/proc/${pid}/ns/mnt`).slice(5, -1);
}

export interface MountRecordView {
  serverPid?: number;
  serverLog?: string;
  backend: string;
  mounts: { target: string; kind: string }[];
}

/** config.json of the atomfs mount at `target` (made with --metadir runDir), if present. */
export function readRecord(runDir: string, target: string, mntns?: string): MountRecordView | undefined {
  const f = join(metadirOf(runDir, target, mntns), 'config.json');
  if (!existsSync(f)) return undefined;
  const r = JSON.parse(readFileSync(f, 'utf8')) as { atomfs: MountRecordView };
  return r.atomfs;
}

/**
 * Register the teardown of an `atomfs mount` at `target` (run dir `runDir`), before mounting, so
 * a failing test still ends clean: `atomfs umount`, then whatever it could not do by force (lazy
 * umount, SIGKILL of a server that stays). Throws (failing the test) when force was needed.
 */
export function guardOciMount(stack: CleanupStack, runDir: string, target: string, prefix: readonly string[] = []): void {
  const abs = resolve(target);
  trackMount(abs);
  stack.add(`atomfs umount ${abs}`, () => {
    const problems: string[] = [];
    const pid = readRecord(runDir, abs)?.serverPid;
    if (isMounted(abs) || existsSync(metadirOf(runDir, abs))) {
      const env = { ...process.env };
      delete env.ATOMFS_TEST_RUN_DIR;
      const r = runSync([...prefix, process.execPath, ATOMFS, 'umount', '--metadir', runDir, abs], { allowFail: true, timeoutMs: 30_000, env });
      if (r.status !== 0) problems.push(`atomfs umount: ${r.stderr.toString('utf8').trim()}`);
    }
    forceClean(abs, pid, problems);
    if (problems.length > 0) throw new ReliabilityError(problems.join('; '));
  });
}

/** Register the teardown of an `atomfs sqfs mount` at `mp`. */
export function guardSqfsMount(stack: CleanupStack, mp: string): void {
  const abs = resolve(mp);
  trackMount(abs);
  stack.add(`atomfs sqfs umount ${abs}`, () => {
    const problems: string[] = [];
    const pid = sqfsServerPid(abs);
    if (isMounted(abs)) {
      const r = runSync([process.execPath, ATOMFS, 'sqfs', 'umount', abs], { allowFail: true, timeoutMs: 30_000 });
      if (r.status !== 0) problems.push(`atomfs sqfs umount: ${r.stderr.toString('utf8').trim()}`);
    }
    forceClean(abs, pid, problems);
    if (problems.length > 0) throw new ReliabilityError(problems.join('; '));
  });
}

function forceClean(abs: string, pid: number | undefined, problems: string[]): void {
  if (pid !== undefined) {
    for (let i = 0; i < 100 && alive(pid); i++) sleepSync(50);
    if (alive(pid)) {
      problems.push(`server ${pid} still running 5 s after umount: killed`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
  for (let i = 0; i < 5 && isMounted(abs); i++) {
    problems.push(`${abs} still mounted after umount: lazy umount`);
    runSync(['umount', '-l', abs], { allowFail: true });
  }
}

/** Kill every server left under `dir` and detach every mount under it (last-resort cleanup). */
export function killServersAndMountsUnder(dir: string): string[] {
  const found: string[] = [];
  for (const pid of serversUnder(dir)) {
    found.push(`server ${pid}: ${(cmdline(pid) ?? []).join(' ')}`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  for (const mp of mountsUnder(dir).sort((a, b) => b.length - a.length)) {
    found.push(`mount ${mp}`);
    runSync(['umount', '-l', mp], { allowFail: true });
  }
  return found;
}

/** Register a final check on `dir`: no server and no mount left under it (killed/detached if so). */
export function guardNoDebris(stack: CleanupStack, dir: string): void {
  stack.add(`no servers or mounts left under ${dir}`, () => {
    const found = killServersAndMountsUnder(dir);
    if (found.length > 0) throw new ReliabilityError(`left behind (now removed): ${found.join('; ')}`);
  });
}

// ---- images ---------------------------------------------------------------------------------

export async function mksquashfs(src: string, out: string, args: readonly string[] = []): Promise<void> {
  await run(['mksquashfs', src, out, '-noappend', '-quiet', '-no-progress', ...args], { timeoutMs: 300_000 });
}

/**
 * Append dm-verity data the way stacker does (veritysetup format, hash tree right after the
 * 4096-padded squashfs image) and return the root hash.
 */
export async function appendVerity(file: string): Promise<string> {
  const size = statSync(file).size;
  if (size % 4096 !== 0) throw new ReliabilityError(`${file}: ${size} bytes is not 4096-aligned (mksquashfs -nopad?)`);
  const r = await run(['veritysetup', 'format', file, file, `--hash-offset=${size}`, `--data-blocks=${size / 4096}`]);
  const m = /Root hash:\s+([0-9a-f]{64})/.exec(r.stdout.toString('utf8'));
  if (!m) throw new ReliabilityError(`veritysetup printed no root hash: ${r.stdout.toString('utf8')}`);
  return m[1]!;
}

export interface LayerFile {
  file: string;
  rootHash?: string;
}

/** Write (or add `tag` to) an OCI layout; layers bottom-most first. Returns blob paths, bottom first. */
export async function makeLayout(dir: string, tag: string, layers: readonly LayerFile[]): Promise<string[]> {
  const w = await writeLayout(dir, {
    tag,
    layers: layers.map((l) => ({ file: l.file, ...(l.rootHash !== undefined ? { rootHash: l.rootHash } : {}) })),
  });
  return w.layers.map((l) => l.path);
}

// ---- walking a mount ------------------------------------------------------------------------

export interface WalkResult {
  summary?: WalkSummary;
  /** "timeout" when the walker had to be killed (a hang), else undefined. */
  hang?: string;
  stderr: string;
}

/** Walk `root` in a child process, killed after `timeoutMs` (then `hang` says so). */
export async function walkInChild(root: string, opts: WalkOptions = {}, timeoutMs = 60_000): Promise<WalkResult> {
  try {
    const r = await run([process.execPath, WALKER, root, JSON.stringify(opts)], { timeoutMs, allowFail: true, maxOutput: 64 << 20 });
    const stderr = r.stderr.toString('utf8');
    if (r.status !== 0) return { stderr, hang: `walker exited ${r.status ?? r.signal}: ${stderr.slice(0, 500)}` };
    return { summary: JSON.parse(r.stdout.toString('utf8')) as WalkSummary, stderr };
  } catch (err) {
    return { hang: (err as Error).message.split('\n')[0], stderr: '' };
  }
}

/**
 * Walk `root` in a worker thread (no process start per walk). A thread stuck in a FUSE request
 * cannot be terminated, so on timeout `onHang` must end the request (kill the server: pending
 * requests then fail with ENOTCONN) before the thread is terminated.
 */
export async function walkInWorker(root: string, opts: WalkOptions, timeoutMs: number, onHang: () => void): Promise<WalkResult> {
  const worker = new Worker(new URL('./reliability-walk.js', import.meta.url), { workerData: { walkRoot: root, options: opts } });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<WalkResult>((resolvePromise) => {
      timer = setTimeout(() => {
        onHang();
        resolvePromise({ hang: `walk of ${root} did not finish in ${timeoutMs} ms`, stderr: '' });
      }, timeoutMs);
      worker.once('message', (m: WalkSummary) => resolvePromise({ summary: m, stderr: '' }));
      worker.once('error', (e) => resolvePromise({ hang: `walker thread failed: ${e.message}`, stderr: '' }));
      worker.once('exit', (code) => resolvePromise({ hang: `walker thread exited ${code} without a result`, stderr: '' }));
    });
  } finally {
    clearTimeout(timer);
    await worker.terminate();
  }
}

/** errno codes a corrupt image may legitimately produce through the mount. */
// EOPNOTSUPP: listxattr on an image without an xattr table, as the kernel's squashfs answers.
export const BENIGN_ERRNOS = new Set(['EIO', 'ENOENT', 'ENOTDIR', 'EISDIR', 'EINVAL', 'ELOOP', 'ENAMETOOLONG', 'ENODATA', 'ERANGE', 'E2BIG', 'EOVERFLOW', 'EFBIG', 'EUCLEAN', 'EOPNOTSUPP']);

/** strerror texts of BENIGN_ERRNOS, as getfattr and find print them. */
const BENIGN_MESSAGES = [
  'Input/output error',
  'No such file or directory',
  'Not a directory',
  'Is a directory',
  'Invalid argument',
  'Too many levels of symbolic links',
  'File name too long',
  'No data available',
  'Numerical result out of range',
  'Argument list too long',
  'Value too large for defined data type',
  'File too large',
  'Structure needs cleaning',
  'Operation not supported',
];

/** Lines of a tool's stderr whose error is NOT one of the benign ones. */
export function unexpectedToolErrors(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((l) => !BENIGN_MESSAGES.some((m) => l.endsWith(m)))
    // find warns about directory cycles ("File system loop detected") instead of failing.
    .filter((l) => !/File system loop detected|Removing leading/.test(l));
}

/** `getfattr -R -P -h -d -m -` over the tree (every xattr name and value), with a timeout. */
export async function getfattrAll(root: string, timeoutMs = 60_000): Promise<{ out: string; stderr: string; hang?: string }> {
  try {
    const r = await run(['getfattr', '-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], { timeoutMs, allowFail: true, maxOutput: 256 << 20 });
    return { out: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
  } catch (err) {
    return { out: '', stderr: '', hang: (err as Error).message.split('\n')[0] };
  }
}

/** `find ROOT` (lists and stats every entry), with a timeout. */
export async function findAll(root: string, timeoutMs = 60_000): Promise<{ count: number; stderr: string; hang?: string }> {
  try {
    const r = await run(['find', root, '-xdev'], { timeoutMs, allowFail: true, maxOutput: 256 << 20 });
    return { count: r.stdout.toString('utf8').split('\n').length - 1, stderr: r.stderr.toString('utf8') };
  } catch (err) {
    return { count: 0, stderr: '', hang: (err as Error).message.split('\n')[0] };
  }
}

// ---- expected content ---------------------------------------------------------------------------

/**
 * What a merged read-only view of plain source dirs (bottom first, no whiteouts) must show: path
 * (relative, "/"-rooted, latin1) → sha256 of every regular file; upper dirs win.
 */
export function expectedHashes(srcDirsBottomFirst: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const d of srcDirsBottomFirst) {
    const s = walk(d, { hashes: true, maxFileBytes: Number.MAX_SAFE_INTEGER });
    if (Object.keys(s.errors).length > 0) throw new ReliabilityError(`reading source ${d}: ${s.samples.join('; ')}`);
    for (const [p, h] of Object.entries(s.hashes ?? {})) out.set(p, h);
  }
  return out;
}

export interface ContentCheck {
  good: number;
  /** Files whose bytes differ from the expected ones: must stay empty. */
  wrong: string[];
  /** Files that are not in the expected set at all. */
  unknown: string[];
  errors: Record<string, number>;
}

/** Compare a walk (made with `hashes: true`) against expectedHashes(). */
export function checkContent(s: WalkSummary, expected: ReadonlyMap<string, string>): ContentCheck {
  const c: ContentCheck = { good: 0, wrong: [], unknown: [], errors: s.errors };
  for (const [p, h] of Object.entries(s.hashes ?? {})) {
    const want = expected.get(p);
    if (want === undefined) c.unknown.push(p);
    else if (want === h) c.good++;
    else c.wrong.push(p);
  }
  return c;
}

/** Run a short command (against a mount); a timeout becomes status -1 instead of an exception. */
export async function runBounded(argv: readonly string[], timeoutMs = 20_000): Promise<RunResult> {
  try {
    return await run(argv, { allowFail: true, timeoutMs });
  } catch (err) {
    return { status: -1, signal: null, stdout: Buffer.alloc(0), stderr: Buffer.from((err as Error).message) };
  }
}

/** SIGKILL `pid` if it runs (for walkInWorker's onHang). */
export function killQuietly(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
