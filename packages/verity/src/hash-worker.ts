/**
 * Worker thread entry: computes level-0 hash blocks (the digests of data blocks, > 99% of the
 * work of a full verify or format) for ranges the main thread hands out, reading the data with
 * readv on the shared descriptor. Returns the blocks by transfer; the main thread compares or writes.
 */
import { parentPort } from 'node:worker_threads';
import { SaltedBlocks } from './block-hasher.js';
import { computeGeometry, type TreeGeometry } from './geometry.js';
import type { HashJob, HashWorkerReady, HashWorkerReply, HashWorkerRequest } from './hash-worker-protocol.js';
import { computeHashBlocks, hashBlocksPerBatch } from './tree-level.js';

class ShortRead extends Error {
  constructor(readonly position: number) {
    super(`file ended before offset ${position}`);
  }
}

interface JobState {
  jobId: number;
  job: HashJob;
  g: TreeGeometry;
  batch: SaltedBlocks;
}

let current: JobState | null = null;
const port = parentPort!;

function startJob(jobId: number, job: HashJob): void {
  const g = computeGeometry(job.params, job.hashStartBlock, 'worker');
  const spec = { algorithm: g.algorithm, hashType: g.hashType, salt: Buffer.from(job.salt) };
  const capacity = hashBlocksPerBatch(g, g.dataBlockSize) * g.hashesPerBlock;
  // Reuse the batch buffer across jobs when the shape allows: first-touching fresh memory is slow.
  const reuse = current !== null && current.batch.blockSize === g.dataBlockSize && current.batch.capacity === capacity && current.job.salt.length === job.salt.length;
  const batch = reuse ? current!.batch.withSpec(spec) : new SaltedBlocks(spec, g.dataBlockSize, capacity);
  current = { jobId, job, g, batch };
}

port.on('message', (msg: HashWorkerRequest) => {
  if (msg.kind === 'job') {
    startJob(msg.jobId, msg.job);
    return;
  }
  let reply: HashWorkerReply;
  const transfer: ArrayBuffer[] = [];
  try {
    const state = current;
    if (state === null || state.jobId !== msg.jobId) throw new Error(`task for unknown job ${msg.jobId}`);
    const { g, job } = state;
    const out = computeHashBlocks(g, 0, msg.first, msg.count, state.batch, (b, firstChild, count) => {
      const position = job.fileOffset + firstChild * g.dataBlockSize;
      if (!b.fillFromFd(job.fd, position, count)) throw new ShortRead(position);
    });
    // Buffer.alloc of a hash-block multiple owns its whole ArrayBuffer, so it can be transferred.
    const blocks = out.buffer as ArrayBuffer;
    reply = { jobId: msg.jobId, id: msg.id, ok: true, blocks };
    transfer.push(blocks);
  } catch (err) {
    reply =
      err instanceof ShortRead
        ? { jobId: msg.jobId, id: msg.id, ok: false, truncatedAt: err.position, message: err.message }
        : { jobId: msg.jobId, id: msg.id, ok: false, message: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply, transfer);
});

// Loaded: the pool hands out tasks from now on (a task queued before this would wait out the
// worker's start, while the calling thread could have hashed it).
port.postMessage({ ready: true } satisfies HashWorkerReady);
