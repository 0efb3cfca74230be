/**
 * Worker thread entry: computes level-0 hash blocks (the digests of data blocks, > 99% of the
 * work of a full verify or format) for ranges the main thread hands out, reading the data with
 * readv on the shared descriptor. Returns the blocks by transfer; the main thread compares or writes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SaltedBlocks } from './block-hasher.js';
import { computeGeometry } from './geometry.js';
import type { HashWorkerInit, HashWorkerReply, HashWorkerTask } from './hash-worker-protocol.js';
import { computeHashBlocks, hashBlocksPerBatch } from './tree-level.js';

class ShortRead extends Error {
  constructor(readonly position: number) {
    super(`file ended before offset ${position}`);
  }
}

const init = workerData as HashWorkerInit;
const g = computeGeometry(init.params, init.hashStartBlock, 'worker');
const spec = { algorithm: g.algorithm, hashType: g.hashType, salt: Buffer.from(init.salt) };
const batch = new SaltedBlocks(spec, g.dataBlockSize, hashBlocksPerBatch(g, g.dataBlockSize) * g.hashesPerBlock);
const port = parentPort!;

port.on('message', (task: HashWorkerTask) => {
  let reply: HashWorkerReply;
  const transfer: ArrayBuffer[] = [];
  try {
    const out = computeHashBlocks(g, 0, task.first, task.count, batch, (b, firstChild, count) => {
      const position = init.fileOffset + firstChild * g.dataBlockSize;
      if (!b.fillFromFd(init.fd, position, count)) throw new ShortRead(position);
    });
    // Buffer.alloc of a hash-block multiple owns its whole ArrayBuffer, so it can be transferred.
    const blocks = out.buffer as ArrayBuffer;
    reply = { id: task.id, ok: true, blocks };
    transfer.push(blocks);
  } catch (err) {
    reply =
      err instanceof ShortRead
        ? { id: task.id, ok: false, truncatedAt: err.position, message: err.message }
        : { id: task.id, ok: false, message: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply, transfer);
});
