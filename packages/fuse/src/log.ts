/**
 * Logging for the session threads. Lines go out with a synchronous write to a file descriptor:
 * the session threads block in read(2) on /dev/fuse, so anything queued for their event loop
 * (console.* in a worker) could sit unsent while the mount hangs.
 */
import { writeSync } from 'node:fs';

export type Log = (line: string) => void;

export function fdLogger(fd: number, prefix: string): Log {
  return (line: string) => {
    try {
      writeSync(fd, `${prefix}${line}\n`);
    } catch {
      // Logging must never take the server down (closed stderr, full disk…).
    }
  };
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}
