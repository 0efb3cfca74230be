/**
 * Worker-thread entry of the session: builds the FileSystem, then loops
 * readSync(/dev/fuse) → Session.handle → writevSync until the kernel ends the connection.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadError, loadFileSystem } from './fs-module.js';
import { describeError, fdLogger } from './log.js';
import { ReadQueue } from './read-queue.js';
import { deviceWriter, runBlockingLoop } from './request-loop.js';
import { type ReadForwarder, Session } from './session.js';
import { Stats } from './stats.js';
import { CONTROL_STATE, type SessionWorkerData, STATE_WAIT, type WorkerMessage } from './worker-protocol.js';

const data = workerData as SessionWorkerData;
const port = parentPort!;
const post = (m: WorkerMessage): void => port.postMessage(m);
const log = fdLogger(data.logFd, data.logPrefix);

async function main(): Promise<void> {
  let fs;
  try {
    fs = await loadFileSystem(data.fs);
  } catch (err) {
    post(loadError(err));
    return;
  }
  const control = new Int32Array(data.control);
  const stats = new Stats(data.stats);
  const queue = data.queue ? new ReadQueue(data.queue) : undefined;
  const forward: ReadForwarder | undefined = queue
    ? (unique, nodeid, fh, offset, size) => queue.push(unique, nodeid, fh, offset, size)
    : undefined;
  const session = new Session(fs, data.config, deviceWriter(data.fd), log, stats, forward);
  post({ type: 'ready' });
  // Block until the main thread has spawned mount(8) (or gave up).
  while (Atomics.load(control, CONTROL_STATE) === STATE_WAIT) Atomics.wait(control, CONTROL_STATE, STATE_WAIT);
  let end: string;
  try {
    end = runBlockingLoop(data.fd, session, control, log, () => post({ type: 'init', negotiated: session.negotiated! }));
  } catch (err) {
    log(`session loop crashed: ${describeError(err)}`);
    end = `error: ${(err as Error).message}`;
  } finally {
    queue?.stop();
  }
  try {
    fs.close?.();
  } catch (err) {
    log(`FileSystem close failed: ${describeError(err)}`);
  }
  post({ type: 'closed', reason: end });
}

void main();
