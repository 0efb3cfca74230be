/**
 * Process and mount helpers shared by the benchmarks: run a command or fail loudly, find server
 * processes, wait for them to exit, read their CPU time and peak memory from /proc.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ATOMFS = new URL('../../bin/atomfs', import.meta.url).pathname;

export class BenchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Run argv (no shell); its stdout, or a BenchError with its stderr. */
export function sh(argv: string[], what: string, timeoutMs = 120_000): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new BenchError(`${what}: ${argv.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr ?? '').trim()}`);
  return r.stdout;
}

export function isMounted(mp: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === mp);
}

/** Lazily detach anything left mounted at `mp` by an earlier, interrupted run. */
export function clearStaleMount(mp: string): void {
  while (isMounted(mp)) sh(['umount', '-l', mp], 'stale mount from an earlier run');
}

/** PIDs whose command line contains every one of `words` (like pgrep -f, without its regex). */
export function pidsWith(words: string[]): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (words.every((w) => argv.includes(w))) out.push(Number(name));
  }
  return out;
}

/** squashfuse_ll daemons serving `mp`. */
export function squashfuseDaemons(mp: string): number[] {
  return pidsWith([mp]).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('squashfuse_ll');
    } catch {
      return false;
    }
  });
}

export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Wait (polling; this process serves nothing) until the given processes are gone. */
export function waitGone(pids: number[], what: string): void {
  const end = Date.now() + 15_000;
  while (pids.some(alive)) {
    if (Date.now() > end) throw new BenchError(`${what}: process ${pids.filter(alive).join(', ')} still running after unmount`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime of a process (all its threads), seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of proc(5); f[0] is field 3.
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
}

/** Peak resident set (VmHWM) of a process, bytes: one number for all its threads. */
export function peakRss(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new BenchError(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** Direct and indirect child processes of `pid` (a server that forks helpers owns their memory too). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop()!;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      let kids = '';
      try {
        kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const k of kids.trim().split(/\s+/).filter(Boolean).map(Number)) {
        out.push(k);
        todo.push(k);
      }
    }
  }
  return out;
}

/** The FUSE server pid of the `atomfs mount` recorded under `runDir` (its --metadir). */
export function atomfsServerPid(runDir: string): number {
  const meta = join(runDir, 'meta');
  for (const ns of readdirSync(meta)) {
    for (const m of readdirSync(join(meta, ns))) {
      const cfg = join(meta, ns, m, 'config.json');
      if (!existsSync(cfg)) continue;
      const pid = (JSON.parse(readFileSync(cfg, 'utf8')) as { atomfs: { serverPid?: number } }).atomfs.serverPid;
      if (pid !== undefined) return pid;
    }
  }
  throw new BenchError(`no server pid recorded under ${meta}`);
}

/** Wall seconds of `sh -c script` (must succeed) and its stdout. */
export function timeShell(script: string, what: string, timeoutMs = 600_000): { seconds: number; stdout: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('sh', ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, maxBuffer: 64 << 20 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new BenchError(`${what}: ${script} failed (${r.status ?? r.signal}): ${(r.stderr ?? '').trim()}`);
  return { seconds, stdout: r.stdout };
}

/** Check every tool is on PATH before spending minutes on datasets. */
export function requireTools(tools: string[]): void {
  for (const tool of tools) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new BenchError(`${tool} is not installed (run scripts/setup.sh)`);
  }
}
