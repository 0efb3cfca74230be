/**
 * What one fetcher learnt about a registry that does not answer, shared with every other
 * fetcher of the cache (threads, mounts, commands) through a marker file's mtime: right after a
 * request exhausted its retries, misses fail at once; for a while after that each miss makes one
 * short try; a success removes the marker. Without it a hanging registry costs every kernel read
 * request (several per file read) the whole retry sequence.
 */
import { closeSync, mkdirSync, openSync, statSync, unlinkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import type { RetryPolicy } from './client.js';

/** After a failure, misses fail without trying for this long. */
export const FAIL_FAST_MS = 1000;

function probeWindowMs(): number {
  const v = Number(process.env.ATOMFS_REGISTRY_DOWN_MS);
  return Number.isFinite(v) && v >= 0 ? v : 30_000;
}

function markerPath(cacheDir: string, registry: string): string {
  return join(cacheDir, 'down', registry.replace(/[^A-Za-z0-9.-]/g, '_'));
}

export type RegistryState = { kind: 'up' } | { kind: 'fail-fast'; sinceMs: number } | { kind: 'probe' };

export function registryState(cacheDir: string, registry: string): RegistryState {
  let mtime: number;
  try {
    mtime = statSync(markerPath(cacheDir, registry)).mtimeMs;
  } catch {
    return { kind: 'up' };
  }
  const age = Date.now() - mtime;
  if (age >= 0 && age < FAIL_FAST_MS) return { kind: 'fail-fast', sinceMs: age };
  if (age >= 0 && age < probeWindowMs()) return { kind: 'probe' };
  return { kind: 'up' };
}

/** One try, short: what a miss costs while the registry is believed down. */
export function probePolicy(p: RetryPolicy): RetryPolicy {
  return { attempts: 1, timeoutMs: Math.min(p.timeoutMs, 2000), backoffMs: p.backoffMs };
}

export function markDown(cacheDir: string, registry: string): void {
  try {
    mkdirSync(join(cacheDir, 'down'), { mode: 0o700, recursive: true });
    const p = markerPath(cacheDir, registry);
    closeSync(openSync(p, 'a', 0o600));
    const now = new Date();
    utimesSync(p, now, now);
  } catch {
    // only an optimisation
  }
}

export function markUp(cacheDir: string, registry: string): void {
  try {
    unlinkSync(markerPath(cacheDir, registry));
  } catch {
    // not marked
  }
}
