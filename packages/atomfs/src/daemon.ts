import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CommandError, InterruptedError } from './errors.js';

/**
 * Run this same CLI again as a detached server process and wait until it reports that its mount
 * is ready (a line "ready" on fd 3) or dies. The server's stdout/stderr go to `logFile`.
 * Returns once the mount is usable, so a caller can use the mountpoint right away.
 */
/**
 * The package's own entry point (bin/atomfs), not process.argv[1]: a program using the library
 * API is not atomfs, and the server needs the entry's guards (no inspector by signal).
 */
const SERVER_ENTRY = fileURLToPath(new URL('../../bin/atomfs', import.meta.url));

export interface DetachedOptions {
  timeoutMs?: number;
  /** Called with the server's pid as soon as it exists (before it is ready), to record it. */
  onSpawn?: (pid: number) => void;
  /** Aborting stops the server (SIGTERM) and fails the start. */
  signal?: AbortSignal;
}

export async function startDetached(argv: string[], logFile: string, o: DetachedOptions = {}): Promise<number> {
  const timeoutMs = o.timeoutMs ?? 30_000;
  const logDir = logFile.slice(0, logFile.lastIndexOf('/'));
  if (logDir !== '') mkdirSync(logDir, { recursive: true });
  const log = openSync(logFile, 'a', 0o600);
  // The server makes no TLS connections: NODE_EXTRA_CA_CERTS would only make its Node parse a
  // certificate bundle at start, a measurable part of a cold mount where it names the system bundle.
  // NODE_OPTIONS could carry --inspect (or --require): a server that others could drive.
  const { NODE_EXTRA_CA_CERTS: _certs, NODE_OPTIONS: _options, ...env } = process.env;
  const child = spawn(process.execPath, [SERVER_ENTRY, ...argv, '--ready-fd', '3'], {
    detached: true,
    stdio: ['ignore', log, log, 'pipe'],
    // glibc's mmap threshold sits at 128 KiB, exactly a squashfs block: every block buffer of a
    // native decoder became an mmap/munmap pair, and decoding speed varied widely; steady with these.
    // Fewer malloc arenas: each reserves 64 MiB of address space, which a `ulimit -v` counts.
    env: { MALLOC_MMAP_THRESHOLD_: '1048576', MALLOC_TRIM_THRESHOLD_: '67108864', MALLOC_ARENA_MAX: '2', ...env },
  });
  closeSync(log);
  // A spawn that fails (EMFILE under a low `ulimit -n`, ENOMEM, EAGAIN) reports through an
  // 'error' event; without a listener that event would end this process with a stack trace.
  const spawnFailed = new Promise<Error>((resolve) => child.once('error', resolve));
  if (child.pid === undefined) throw new CommandError(`cannot start the server process: ${spawnMessage(await spawnFailed)}`);
  o.onSpawn?.(child.pid);
  const pipe = child.stdio[3] as NodeJS.ReadableStream;
  let text = '';
  const outcome = await new Promise<'ready' | 'died' | 'timeout' | 'aborted'>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), timeoutMs);
    if (o.signal?.aborted) resolve('aborted');
    o.signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve('aborted');
    });
    pipe.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('ready')) {
        clearTimeout(timer);
        resolve('ready');
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      resolve('died');
    });
    void spawnFailed.then(() => {
      clearTimeout(timer);
      resolve('died');
    });
  });
  if (outcome === 'ready') {
    (pipe as unknown as { destroy(): void }).destroy();
    child.unref();
    return child.pid!;
  }
  if (outcome === 'timeout' || outcome === 'aborted') await stop(child);
  if (outcome === 'aborted') throw new InterruptedError('interrupted while the server was starting');
  const lastLines = readFileSync(logFile, 'utf8').trim().split('\n');
  // V8's fatal banner (out of memory under `ulimit -v`) starts with a lone "#".
  const errLine =
    [...lastLines].reverse().find((l) => l.startsWith('Error: ')) ??
    lastLines.find((l) => /^# Fatal|FATAL ERROR:/.test(l))?.replace(/^#\s*/, '').concat(' (the server ran out of memory: is `ulimit -v` too low?)') ??
    lastLines[lastLines.length - 1] ??
    '';
  throw new CommandError(
    outcome === 'timeout' ? `server did not become ready in ${timeoutMs / 1000} s (log: ${logFile})` : errLine.replace(/^Error: /, '') || `server exited (log: ${logFile})`,
  );
}

/**
 * Stops a server that is still starting and waits until it has gone: one that had mounted
 * unmounts itself on SIGTERM, and the caller's undo must not race it for the same mount.
 */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await gone;
  clearTimeout(timer);
}

/** How long a stopped server may take to unmount and exit before it is killed. */
const STOP_GRACE_MS = 3000;

/** A spawn error in words a user can act on. */
function spawnMessage(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EMFILE' || code === 'ENFILE') return `too many open files (${code}); raise the open-file limit (ulimit -n)`;
  return err.message;
}

/** In the server process: tell the parent waiting in startDetached() that the mount is ready. */
export function signalReady(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    writeSync(fd, 'ready\n');
    closeSync(fd);
  } catch {
    // The parent went away; nothing to tell.
  }
}
