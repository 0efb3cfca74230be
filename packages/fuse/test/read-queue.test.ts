/** The shared-memory READ queue: every item reaches exactly one consumer thread, intact. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { ReadQueue } from '../src/read-queue.js';

const QUEUE_URL = new URL('../src/read-queue.js', import.meta.url).href;

const CONSUMER = `
const { workerData } = require('node:worker_threads');
import(workerData.url).then(({ ReadQueue }) => {
  const q = new ReadQueue(workerData.queue);
  const seen = new Int32Array(workerData.seen);
  const bad = new Int32Array(workerData.bad);
  for (let r = q.pop(); r !== undefined; r = q.pop()) {
    const u = Number(r.unique);
    if (r.nodeid !== r.unique * 3n || r.fh !== r.unique + 7n || r.offset !== r.unique << 20n || r.size !== (u % 1000) + 1) Atomics.add(bad, 0, 1);
    Atomics.add(seen, u, 1);
  }
});
`;

it('delivers every READ exactly once to one of several consumer threads', async () => {
  const N = 50_000;
  const q = ReadQueue.create(8); // small: the producer must cope with a full queue
  const seen = new SharedArrayBuffer(4 * N);
  const bad = new SharedArrayBuffer(4);
  const workers = Array.from({ length: 3 }, () => new Worker(CONSUMER, { eval: true, workerData: { url: QUEUE_URL, queue: q.buffer, seen, bad } }));
  const exits = workers.map((w) => new Promise<number>((resolve, reject) => (w.on('exit', resolve), w.on('error', reject))));
  let full = 0;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let u = 0; u < N; u++) {
    const b = BigInt(u);
    while (!q.push(b, b * 3n, b + 7n, b << 20n, (u % 1000) + 1)) {
      full++;
      Atomics.wait(pause, 0, 0, 0.05);
    }
  }
  q.stop();
  assert.equal(q.push(1n, 1n, 1n, 1n, 1), false, 'a stopped queue takes nothing');
  assert.deepEqual(await Promise.all(exits), [0, 0, 0]);
  const counts = new Int32Array(seen);
  const wrong = counts.findIndex((c) => c !== 1);
  assert.equal(wrong, -1, `item ${wrong} consumed ${counts[wrong]} times`);
  assert.equal(new Int32Array(bad)[0], 0, 'fields intact');
  assert.ok(full > 0, 'the queue was full at times');
});

it('rejects capacities that are not powers of two', () => {
  assert.throws(() => ReadQueue.create(6), RangeError);
});
