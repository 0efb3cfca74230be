/**
 * Worker-thread entry of a read worker: owns its own FileSystem instance and answers the
 * READ requests the session thread queues, writing each reply to /dev/fuse itself.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadError, loadFileSystem } from './fs-module.js';
import { describeError, fdLogger } from './log.js';
import { ReadQueue } from './read-queue.js';
import { deviceWriter } from './request-loop.js';
import { serveRead } from './session.js';
import { Stats } from './stats.js';
import type { ReadWorkerData, WorkerMessage } from './worker-protocol.js';
import { OUT_HEADER_SIZE } from './wire/header.js';

const data = workerData as ReadWorkerData;
const port = parentPort!;
const post = (m: WorkerMessage): void => port.postMessage(m);
const log = fdLogger(data.logFd, `${data.logPrefix}read worker ${data.index}: `);

async function main(): Promise<void> {
  let fs;
  try {
    fs = await loadFileSystem(data.fs);
  } catch (err) {
    post(loadError(err));
    return;
  }
  const queue = new ReadQueue(data.queue);
  const stats = new Stats(data.stats);
  const write = deviceWriter(data.fd);
  const header = Buffer.alloc(OUT_HEADER_SIZE);
  post({ type: 'ready' });
  let reason = 'stopped';
  try {
    for (let r = queue.pop(); r !== undefined; r = queue.pop()) {
      if (!serveRead(fs, write, header, r.unique, r.nodeid, r.fh, r.offset, r.size, log, stats)) {
        // The connection is gone; the session thread sees ENODEV and stops the queue.
        reason = 'unmounted';
      }
    }
  } catch (err) {
    log(`read loop crashed: ${describeError(err)}`);
    reason = `error: ${(err as Error).message}`;
  }
  try {
    fs.close?.();
  } catch (err) {
    log(`FileSystem close failed: ${describeError(err)}`);
  }
  post({ type: 'closed', reason });
}

void main();
