import type { Worker } from 'node:worker_threads';
import { SaltedBlocks, type HashSpec } from './block-hasher.js';
import { FileSource } from '@atomfs/io';
import type { ByteSource } from './byte-source.js';
import { HashWorkerError, VerityError, VerityTruncatedError } from './errors.js';
import type { TreeGeometry } from './geometry.js';
import type { HashJob, HashWorkerReady, HashWorkerReply, HashWorkerRequest } from './hash-worker-protocol.js';
import { hashPool, isReadyMessage } from './hash-pool.js';
import { computeHashBlocks, hashBlocksPerBatch } from './tree-level.js';

/**
 * Level 0 of the tree (the digests of every data block) is where all the time of a full verify
 * or format goes. These produce it in order, in chunks of whole hash blocks, either on the
 * calling thread or spread over worker threads.
 */
export interface Level0Chunk {
  /** Index (inside level 0) of the first hash block. */
  readonly first: number;
  readonly count: number;
  /** count * hashBlockSize bytes, exactly as they must be stored. */
  readonly blocks: Buffer;
}

/** Below this much data, starting workers costs more than it saves. */
export const PARALLEL_MIN_BYTES = 32 * 1024 * 1024;

/** A source whose bytes can be read straight from a descriptor (readv into the salted batch). */
function fdOf(source: ByteSource): { fd: number; offset: number } | null {
  return source instanceof FileSource && source.fd >= 0 ? { fd: source.fd, offset: source.offset } : null;
}

/** Level 0 on the calling thread. */
export function* level0Sync(source: ByteSource, g: TreeGeometry, spec: HashSpec, label: string): Generator<Level0Chunk> {
  const perBatch = hashBlocksPerBatch(g, g.dataBlockSize);
  const batch = new SaltedBlocks(spec, g.dataBlockSize, perBatch * g.hashesPerBlock);
  const direct = fdOf(source);
  const fill = (b: SaltedBlocks, firstChild: number, count: number): void => {
    const position = firstChild * g.dataBlockSize;
    if (direct) {
      if (!b.fillFromFd(direct.fd, direct.offset + position, count)) {
        throw new VerityTruncatedError(label, position, count * g.dataBlockSize, position);
      }
    } else {
      b.fillFromSource(source, position, count);
    }
  };
  const total = g.levels === 0 ? 0 : g.levelSize[0]!;
  for (let first = 0; first < total; first += perBatch) {
    const count = Math.min(perBatch, total - first);
    yield { first, count, blocks: computeHashBlocks(g, 0, first, count, batch, fill) };
  }
}

/** Whether level0Parallel can work on this source (it needs a file descriptor). */
export function canParallelize(source: ByteSource): boolean {
  return fdOf(source) !== null;
}

interface Pending {
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
  promise: Promise<Buffer>;
  /** Set as soon as the result is known (a promise cannot be polled). */
  value?: Buffer;
}

function deferred(): Pending {
  const p = {} as Pending;
  p.promise = new Promise<Buffer>((res, rej) => {
    p.resolve = (b) => {
      p.value = b;
      res(b);
    };
    p.reject = rej;
  });
  // A rejection nobody awaits yet (the consumer is on an earlier chunk) must not crash the process.
  p.promise.catch(() => undefined);
  return p;
}

/** Batches per task handed to a thread (measured: 1 MiB tasks cost ~40% throughput in messaging). */
const TASK_BATCHES = 4;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

let nextJobId = 1;

/**
 * Level 0 on the calling thread plus `workers` pooled worker threads sharing the file descriptor.
 * Starting a worker is slow (a V8 isolate), so the calling thread does not wait for them: whenever
 * the next chunk in order is not ready it hashes the next unassigned chunk itself. Chunks come
 * back in order; at most a few per thread are in flight or waiting, so memory stays bounded.
 */
export async function* level0Parallel(
  source: FileSource,
  g: TreeGeometry,
  spec: HashSpec,
  label: string,
  workers: number,
): AsyncGenerator<Level0Chunk> {
  const direct = fdOf(source)!;
  const total = g.levels === 0 ? 0 : g.levelSize[0]!;
  if (total === 0) return;
  // Tasks of several batches: fewer messages and event-loop turns per byte.
  const perBatch = hashBlocksPerBatch(g, g.dataBlockSize);
  const perTask = TASK_BATCHES * perBatch;
  const taskCount = Math.ceil(total / perTask);
  const jobId = nextJobId++;
  const job: HashJob = {
    fd: direct.fd,
    fileOffset: direct.offset,
    params: { hashType: g.hashType, algorithm: g.algorithm, dataBlockSize: g.dataBlockSize, hashBlockSize: g.hashBlockSize, dataBlocks: g.dataBlocks },
    hashStartBlock: g.hashStartBlock,
    salt: spec.salt,
  };
  const n = Math.max(0, Math.min(workers, taskCount - 1));
  const window = 3 * (n + 1);
  const results: Pending[] = [];
  for (let i = 0; i < taskCount; i++) results.push(deferred());
  let nextTask = 0;
  let consumed = 0;
  let failed: Error | null = null;
  const idle: Worker[] = [];
  const inFlight = new Map<Worker, number>();
  const broken = new Set<Worker>();
  const detach: Array<() => void> = [];
  const taskRange = (id: number): { first: number; count: number } => {
    const first = id * perTask;
    return { first, count: Math.min(perTask, total - first) };
  };
  const canStart = (): boolean => failed === null && nextTask < taskCount && nextTask < consumed + window;

  const dispatch = (w: Worker): void => {
    if (!canStart()) {
      if (!idle.includes(w)) idle.push(w);
      return;
    }
    const id = nextTask++;
    const msg: HashWorkerRequest = { kind: 'task', jobId, id, ...taskRange(id) };
    inFlight.set(w, (inFlight.get(w) ?? 0) + 1);
    w.postMessage(msg);
  };
  const failAll = (err: Error): void => {
    if (failed === null) failed = err;
    for (const r of results) r.reject(failed);
  };

  const batch = new SaltedBlocks(spec, g.dataBlockSize, perBatch * g.hashesPerBlock);
  const fill = (b: SaltedBlocks, firstChild: number, count: number): void => {
    const position = firstChild * g.dataBlockSize;
    if (!b.fillFromFd(direct.fd, direct.offset + position, count)) {
      throw new VerityTruncatedError(label, position, count * g.dataBlockSize, position);
    }
  };

  const pool = n > 0 ? hashPool.acquire(n) : [];
  try {
    for (const w of pool) {
      const onMessage = (reply: HashWorkerReply | HashWorkerReady): void => {
        if (isReadyMessage(reply)) {
          // Loaded now: two tasks, one running and one queued.
          dispatch(w);
          dispatch(w);
          return;
        }
        if (reply.jobId !== jobId) return;
        inFlight.set(w, inFlight.get(w)! - 1);
        if (reply.ok) {
          results[reply.id]!.resolve(Buffer.from(reply.blocks));
        } else if (reply.truncatedAt !== undefined) {
          failAll(new VerityTruncatedError(label, reply.truncatedAt - direct.offset, g.dataBlockSize, reply.truncatedAt - direct.offset));
        } else {
          broken.add(w);
          failAll(new HashWorkerError(label, `hash worker failed: ${reply.message}`));
        }
        dispatch(w);
      };
      const onError = (err: Error): void => {
        broken.add(w);
        failAll(new HashWorkerError(label, `hash worker crashed: ${err.message}`));
      };
      const onExit = (code: number): void => {
        broken.add(w);
        failAll(new HashWorkerError(label, `hash worker exited with code ${code}`));
      };
      w.on('message', onMessage);
      w.on('error', onError);
      w.on('exit', onExit);
      detach.push(() => {
        w.off('message', onMessage);
        w.off('error', onError);
        w.off('exit', onExit);
      });
      const start: HashWorkerRequest = { kind: 'job', jobId, job };
      w.postMessage(start);
      // Two tasks per worker: one running, one queued, so a worker never waits for the main thread.
      // A worker still loading gets them when it says it is ready: tasks queued in it would wait
      // out its start while this thread, blocked on them in order, could have hashed them.
      if (hashPool.isReady(w)) {
        dispatch(w);
        dispatch(w);
      }
    }
    for (let id = 0; id < taskCount; id++) {
      const want = results[id]!;
      while (want.value === undefined) {
        if (failed !== null) throw failed;
        if (canStart()) {
          // Hash the next unassigned chunk here, then let worker replies in.
          const mine = nextTask++;
          const r = taskRange(mine);
          results[mine]!.resolve(computeHashBlocks(g, 0, r.first, r.count, batch, fill));
          await yieldToEventLoop();
        } else {
          await want.promise;
        }
      }
      consumed++;
      while (idle.length > 0 && canStart()) dispatch(idle.pop()!);
      yield { ...taskRange(id), blocks: want.value };
    }
  } finally {
    failed ??= new VerityError(label, 'level-0 hashing stopped');
    for (const d of detach) d();
    // A worker still busy with this job (the consumer stopped early) is stopped, not reused:
    // its late replies would otherwise reach the next job.
    for (const w of pool) hashPool.release(w, !broken.has(w) && (inFlight.get(w) ?? 0) === 0);
  }
}
