/**
 * Running external tools (mksquashfs, mount, getfattr, ...) with captured output. Every run has a
 * timeout so a wedged tool fails the test instead of hanging the suite.
 */
import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly status: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stderr: string,
    readonly reason = '',
  ) {
    const how = reason || (signal !== null ? `killed by ${signal}` : `exit status ${status}`);
    const tail = stderr.length > 2000 ? '…' + stderr.slice(-2000) : stderr;
    super(`${argv.map(quoteArg).join(' ')}: ${how}${tail.trim() ? `\n${tail.trimEnd()}` : ''}`);
    this.name = new.target.name;
  }
}

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
}

export interface RunOptions {
  input?: Buffer | string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Default 120 s. The child gets SIGKILL when it runs longer. */
  timeoutMs?: number;
  /** Do not throw on a non-zero exit; the caller inspects `status`. */
  allowFail?: boolean;
  /** Output beyond this many bytes per stream is an error (default 512 MiB). */
  maxOutput?: number;
}

function quoteArg(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** Run argv[0] with argv[1..] (no shell), collect stdout/stderr as Buffers. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new TypeError('run: empty argv');
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const maxOutput = opts.maxOutput ?? 512 * 1024 * 1024;
  const spawnOpts: SpawnOptions = { cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] };
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, spawnOpts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let failure = '';
    const timer = setTimeout(() => {
      failure = `timed out after ${timeoutMs} ms`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout!.on('data', (b: Buffer) => {
      outLen += b.length;
      if (outLen > maxOutput) {
        failure = `stdout exceeded ${maxOutput} bytes`;
        child.kill('SIGKILL');
      } else out.push(b);
    });
    child.stderr!.on('data', (b: Buffer) => {
      errLen += b.length;
      if (errLen <= maxOutput) err.push(b);
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new CommandError(argv, null, null, '', `cannot start: ${e.message}`));
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      const res: RunResult = { status, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
      if (failure) reject(new CommandError(argv, status, signal, res.stderr.toString('utf8'), failure));
      else if (status !== 0 && !opts.allowFail) reject(new CommandError(argv, status, signal, res.stderr.toString('utf8')));
      else resolve(res);
    });
    // EPIPE when the child exits without reading its input is not our error; the exit status tells.
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.input ?? '');
  });
}

/** Synchronous variant for cleanup paths (process 'exit' handlers cannot await). */
export function runSync(argv: readonly string[], opts: RunOptions = {}): RunResult {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new TypeError('runSync: empty argv');
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: opts.env,
    input: opts.input ?? '',
    timeout: opts.timeoutMs ?? 120_000,
    killSignal: 'SIGKILL',
    maxBuffer: opts.maxOutput ?? 512 * 1024 * 1024,
  });
  if (r.error) throw new CommandError(argv, r.status, r.signal, r.stderr?.toString('utf8') ?? '', r.error.message);
  const res: RunResult = { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  if (r.status !== 0 && !opts.allowFail) throw new CommandError(argv, r.status, r.signal, r.stderr.toString('utf8'));
  return res;
}

/** Sleep without an event loop (for retry loops inside synchronous cleanup). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
