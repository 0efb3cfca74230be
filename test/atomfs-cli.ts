/**
 * Driving bin/atomfs as a user would (a separate process), and finding what an atomfs mount may
 * leave behind: mounts, loop devices and `atomfs __serve` processes under a test's temp dir.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listLoopDevices, readMountinfo, run, runAsUserInUserns, runSync, sleepSync, TEMP_PREFIX, type CleanupStack, type RunResult } from './lib/index.js';
import type { Plan, StepResult } from './atomfs-userns-driver.js';

export const ATOMFS_BIN = fileURLToPath(new URL('../../bin/atomfs', import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** ATOMFS_TEST_RUN_DIR; `null` removes it from the environment. */
  runDir: string | null;
  cwd?: string;
  timeoutMs?: number;
}

/** Run `atomfs ARGS` (never throws on a non-zero exit). */
export async function atomfs(args: readonly string[], opts: CliOptions): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.ATOMFS_TEST_RUN_DIR;
  if (opts.runDir !== null) env.ATOMFS_TEST_RUN_DIR = opts.runDir;
  const r: RunResult = await run([process.execPath, ATOMFS_BIN, ...args], {
    allowFail: true,
    env,
    timeoutMs: opts.timeoutMs ?? 120_000,
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
  });
  return { status: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
}

export function showResult(r: CliResult): string {
  return `exit ${r.status}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** atomfs ARGS must exit 0. */
export async function atomfsOk(args: readonly string[], opts: CliOptions): Promise<CliResult> {
  const r = await atomfs(args, opts);
  if (r.status !== 0) throw new Error(`atomfs ${args.join(' ')} failed: ${showResult(r)}`);
  return r;
}

/** The mount namespace id as Go atomfs names meta/<mntns> ("mnt:[4026531840]" → "4026531840"). */
export function mntnsId(): string {
  return readlinkSync('/proc/self/ns/mnt').slice(5, -1);
}

/** Only a test's own temp dir (os.tmpdir()/atomfs-...) may be cleaned wholesale. */
function isTestDir(dir: string): boolean {
  return dir.startsWith(`${resolve(tmpdir())}/${TEMP_PREFIX}`) && !dir.slice(resolve(tmpdir()).length + 1).includes('..');
}

/** pids of `atomfs __serve` processes whose command line mentions `under`. */
export function serversUnder(under: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const argv = cmd.split('\0');
    if (argv.includes('__serve') && cmd.includes(under)) pids.push(Number(p));
  }
  return pids;
}

export function mountsUnder(dir: string): string[] {
  return readMountinfo()
    .filter((m) => m.mountpoint === dir || m.mountpoint.startsWith(dir + '/'))
    .map((m) => `${m.mountpoint} (${m.fstype} from ${m.source})`);
}

export function loopsUnder(dir: string): string[] {
  return listLoopDevices()
    .filter((l) => l.backFile.startsWith(dir + '/'))
    .map((l) => `${l.name} on ${l.backFile}`);
}

/**
 * Everything an atomfs mount under `dir` could leave: mounts, loop devices, servers. Waits up to
 * `graceMs` for them to go (a loop device with autoclear is released just after umount, a server
 * exits just after its mount is gone).
 */
export function leftoversUnder(dir: string, graceMs = 3000): string[] {
  const end = Date.now() + graceMs;
  for (;;) {
    const found = [...mountsUnder(dir).map((m) => `mount ${m}`), ...loopsUnder(dir).map((l) => `loop ${l}`), ...serversUnder(dir).map((p) => `server pid ${p}`)];
    if (found.length === 0 || Date.now() >= end) return found;
    sleepSync(50);
  }
}

/**
 * Remove whatever atomfs left under `dir` (test cleanup, also after a failed assertion): servers
 * first (their mounts may live in another mount namespace), then mounts deepest first, then
 * loop devices.
 */
export function forceCleanUnder(dir: string): void {
  // Never with '' or '/' (a before() hook that failed early): that would unmount the whole system.
  if (!isTestDir(dir)) return;
  for (const pid of serversUnder(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (let round = 0; round < 3; round++) {
    const mps = readMountinfo()
      .map((m) => m.mountpoint)
      .filter((mp) => mp === dir || mp.startsWith(dir + '/'))
      .sort((a, b) => b.length - a.length);
    if (mps.length === 0) break;
    for (const mp of mps) {
      if (runSync(['umount', mp], { allowFail: true }).status !== 0) runSync(['umount', '-l', mp], { allowFail: true });
    }
  }
  for (const l of listLoopDevices()) if (l.backFile.startsWith(dir + '/')) runSync(['losetup', '-d', l.name], { allowFail: true });
}

/** Register forceCleanUnder(dir) on `stack` (runs before the dir itself is removed if added after it). */
export function cleanAtomfsAtEnd(stack: CleanupStack, dir: string): void {
  stack.add(`atomfs leftovers under ${dir}`, () => forceCleanUnder(dir));
}

/** meta/<mntns>/ of a runtime dir: exists and is empty after every umount (Go contract). */
export function nsDirState(runDir: string, ns = mntnsId()): 'missing' | 'empty' | string[] {
  const d = `${runDir}/meta/${ns}`;
  if (!existsSync(d)) return 'missing';
  const names = readdirSync(d);
  return names.length === 0 ? 'empty' : names;
}

// ---- running a plan inside a user namespace ------------------------------------------------------

export const USERNS_DRIVER = fileURLToPath(new URL('./atomfs-userns-driver.js', import.meta.url));

/**
 * Run `plan` with test/atomfs-userns-driver.js as `user` inside `unshare -Umr`; returns the
 * results of every step. The plan file is written into `dir` (must be readable by the user).
 */
export async function runPlanInUserns(user: string, dir: string, plan: Plan): Promise<StepResult[]> {
  const file = `${dir}/plan-${process.pid}-${planCounter++}.json`;
  writeFileSync(file, JSON.stringify(plan), { mode: 0o644 });
  const r = await runAsUserInUserns(user, [process.execPath, USERNS_DRIVER, file], { timeoutMs: 300_000 });
  const out = r.stdout.toString('utf8').trim();
  if (r.status !== 0 || out === '') throw new Error(`userns driver exit ${r.status}: ${r.stderr.toString('utf8')}\n${out}`);
  return JSON.parse(out.split('\n').pop()!) as StepResult[];
}
let planCounter = 0;

/**
 * After each test (its own assertions already ran): remove whatever it left under `work` and any
 * metadir left in the runtime dirs, so one failing test does not make the next ones fail too.
 */
export function resetAfterTest(work: string, runtimeDirs: readonly string[]): void {
  if (!isTestDir(work)) return;
  forceCleanUnder(work);
  for (const rd of runtimeDirs) {
    if (!rd.startsWith(work + '/')) continue;
    const meta = `${rd}/meta`;
    if (!existsSync(meta)) continue;
    for (const ns of readdirSync(meta)) for (const m of readdirSync(`${meta}/${ns}`)) rmSync(`${meta}/${ns}/${m}`, { recursive: true, force: true });
  }
}
