import { Worker } from 'node:worker_threads';
import type { HashWorkerReady } from './hash-worker-protocol.js';

/**
 * Hash worker threads kept between jobs. Starting a worker (a V8 isolate plus module loading)
 * costs as much as hashing a large layer; `atomfs verify` checks every layer of an image
 * in turn, so workers are reused and only stopped after a quiet spell. Idle workers are unref'd:
 * they never keep the process alive.
 */
const IDLE_MS = 2000;

class HashPool {
  private idle: Worker[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** Workers whose module has loaded (they posted HashWorkerReady). */
  private readonly ready = new WeakSet<Worker>();

  /** Whether `w` has loaded and takes tasks at once. */
  isReady(w: Worker): boolean {
    return this.ready.has(w);
  }

  /** n workers for one job (idle ones first), ref'd while in use. */
  acquire(n: number): Worker[] {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const out = this.idle.splice(0, n);
    while (out.length < n) out.push(this.spawn());
    for (const w of out) w.ref();
    return out;
  }

  /** Returns a worker after a job; one with work still in flight (or broken) is stopped instead. */
  release(w: Worker, reusable: boolean): void {
    if (!reusable) {
      void w.terminate();
      return;
    }
    w.unref();
    this.idle.push(w);
    if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.shutdown();
      }, IDLE_MS);
      this.timer.unref();
    }
  }

  /** Stops every idle worker now. */
  async shutdown(): Promise<void> {
    const ws = this.idle.splice(0);
    await Promise.all(ws.map((w) => w.terminate()));
  }

  private spawn(): Worker {
    const w = new Worker(new URL('./hash-worker.js', import.meta.url));
    // Jobs attach their own listeners; these keep an idle worker's death from crashing the process.
    w.on('error', () => undefined);
    const onReady = (m: unknown): void => {
      if (isReadyMessage(m)) {
        this.ready.add(w);
        w.off('message', onReady);
      }
    };
    w.on('message', onReady);
    w.on('exit', () => {
      const i = this.idle.indexOf(w);
      if (i >= 0) this.idle.splice(i, 1);
    });
    return w;
  }
}

export function isReadyMessage(m: unknown): m is HashWorkerReady {
  return typeof m === 'object' && m !== null && (m as Partial<HashWorkerReady>).ready === true;
}

export const hashPool = new HashPool();

/** Stops pooled idle hash workers (they stop by themselves after 2 s idle and never hold the process open). */
export function shutdownHashWorkers(): Promise<void> {
  return hashPool.shutdown();
}
