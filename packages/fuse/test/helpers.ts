/** Shared test plumbing: temp dirs, commands, mount checks, fixture servers, a test user. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMountinfo } from '../src/index.js';

export const MEMFS_MODULE = fileURLToPath(new URL('./memfs.js', import.meta.url));
export const FIXTURE_SERVER = fileURLToPath(new URL('./fixture-server.js', import.meta.url));

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command (async, so an in-process server keeps answering) and collects its output. */
export function run(cmd: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 60_000, env: options.env ?? process.env },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string' && (err as NodeJS.ErrnoException).code === 'ENOENT') {
          reject(new Error(`${cmd} is not installed`));
          return;
        }
        resolve({
          code: err ? ((err as unknown as { code: number | null }).code ?? null) : 0,
          signal: err ? ((err as unknown as { signal: NodeJS.Signals | null }).signal ?? null) : null,
          stdout,
          stderr,
        });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

/** Like run() but throws unless the exit code is 0. */
export async function runOk(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  const r = await run(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code ?? r.signal}): ${r.stderr}`);
  return r.stdout;
}

/** A fresh directory under os.tmpdir(); the caller removes it with removeTempDir. */
export function makeTempDir(prefix = 'atomfs-fuse-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Removes a temp dir. A mount still inside it is a leak: it is detached (so the machine stays
 * clean) and then reported as an error, which fails the calling hook.
 */
export async function removeTempDir(dir: string): Promise<void> {
  const leaked = mountsUnder(dir);
  for (const m of leaked.reverse()) await run('umount', ['-l', m]);
  const left = mountsUnder(dir);
  if (left.length === 0) rmSync(dir, { recursive: true, force: true });
  if (leaked.length > 0) throw new Error(`mounts left behind under ${dir}: ${leaked.join(', ')}${left.length ? ' (could not remove)' : ''}`);
}

export function mountsUnder(dir: string): string[] {
  return readMountinfo()
    .filter((m) => m.mountpoint === dir || m.mountpoint.startsWith(`${dir}/`))
    .map((m) => m.mountpoint);
}

export function fuseMountsUnder(dir: string): string[] {
  return readMountinfo()
    .filter((m) => (m.mountpoint === dir || m.mountpoint.startsWith(`${dir}/`)) && m.fstype.startsWith('fuse'))
    .map((m) => m.mountpoint);
}

/** Waits until `predicate` holds (polling), or throws after `timeoutMs`. */
export async function waitFor(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface FixtureServer {
  child: ChildProcess;
  /** Lines the server printed on stdout (ready, closed …). */
  lines: string[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface FixtureArgs {
  mountpoint: string;
  mode: 'worker' | 'in-thread';
  readWorkers?: number;
  readdirplus?: 'auto' | 'always' | 'never';
  allowOther?: boolean;
  signals?: NodeJS.Signals[];
  subtype?: string;
  fsname?: string;
  /** Throw an uncaught exception this long after mounting. */
  crashAfterMs?: number;
}

/**
 * Starts test/fixture-server.js in a child process (optionally through a wrapper such as
 * runuser/unshare) and waits until it prints "ready".
 */
export async function startFixtureServer(args: FixtureArgs, wrapper: string[] = []): Promise<FixtureServer> {
  const argv = [...wrapper, process.execPath, FIXTURE_SERVER, JSON.stringify(args)];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    let i;
    while ((i = buffered.indexOf('\n')) >= 0) {
      lines.push(buffered.slice(0, i));
      buffered = buffered.slice(i + 1);
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let done = false;
  void exited.then(() => (done = true));
  await waitFor('fixture server ready', () => done || lines.includes('ready'), 20_000).catch(() => {});
  if (!lines.includes('ready')) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`fixture server did not start: ${stderr}`);
  }
  return { child, lines, stderr: () => stderr, exited };
}

/**
 * Makes sure the fixture server process is gone and its mount removed. Having to kill it or
 * to unmount is a leak of the test that ran: cleaned up, then reported as an error.
 */
export async function stopFixtureServer(s: FixtureServer, mountpoint: string): Promise<void> {
  const running = s.child.exitCode === null && s.child.signalCode === null;
  if (running) s.child.kill('SIGKILL');
  await s.exited;
  const mounted = fuseMountsUnder(mountpoint).length > 0;
  if (mounted) await run('umount', ['-l', mountpoint]);
  if (running || mounted) throw new Error(`fixture server left behind: ${running ? 'process still running' : ''} ${mounted ? 'mount still present' : ''}`);
}

export const TEST_USER = 'atomfs-test-fuse';

/** Creates the unprivileged test user if missing; returns a cleanup that deletes it. */
export async function ensureTestUser(): Promise<() => Promise<void>> {
  const exists = (await run('id', [TEST_USER])).code === 0;
  if (!exists) await runOk('useradd', ['-M', '-s', '/bin/bash', TEST_USER]);
  return async () => {
    if (!exists) await run('userdel', [TEST_USER]);
  };
}

/**
 * Non-root users need /dev/fuse mode 0666 (the usual distribution setting; this VM ships 0600).
 * Left at 0666 afterwards: other suites may rely on it concurrently.
 */
export function ensureDevFuseOpenToAll(): void {
  if ((statSync('/dev/fuse').mode & 0o666) !== 0o666) chmodSync('/dev/fuse', 0o666);
}
