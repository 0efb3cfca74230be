/**
 * Fetcher thread: does the HTTP a synchronous reader cannot (range GETs with retries into the
 * blob cache), one request at a time in arrival order, and wakes the reader after each reply.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { CachedBlob } from './cache.js';
import { RegistryClient, type RetryPolicy } from './client.js';
import { markDown, markUp, probePolicy, registryState } from './down.js';
import { BlobCacheError, RegistryError, RegistryUnavailableError } from './errors.js';
import { fillRange } from './fetch.js';
import type { FetchReply, FetchRequest, FetcherData } from './fetch-protocol.js';

const data = workerData as FetcherData;
const signal = new Int32Array(data.signal);
const clients = new Map<string, RegistryClient>();
const blobs = new Map<string, CachedBlob>();

function clientFor(req: FetchRequest, policy: RetryPolicy): RegistryClient {
  const key = JSON.stringify([req.repo.registry, req.repo.repository, req.repo.insecure === true, req.repo.authFile ?? '', policy]);
  let c = clients.get(key);
  if (c === undefined) {
    c = new RegistryClient(req.repo, policy);
    clients.set(key, c);
  }
  return c;
}

function blobFor(req: FetchRequest): CachedBlob {
  const key = `${req.cacheDir}\0${req.digest}`;
  let b = blobs.get(key);
  if (b !== undefined && b.ino !== req.ino) {
    b.close();
    blobs.delete(key);
    b = undefined;
  }
  if (b === undefined) {
    b = new CachedBlob(req.cacheDir, req.digest.slice('sha256:'.length), req.size, { expectIno: req.ino });
    blobs.set(key, b);
  }
  return b;
}

let port: MessagePort | undefined;
let chain: Promise<void> = Promise.resolve();

function reply(r: FetchReply): void {
  port!.postMessage(r);
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
}

async function serve(req: FetchRequest): Promise<void> {
  try {
    const state = registryState(req.cacheDir, req.repo.registry);
    if (state.kind === 'fail-fast') throw new RegistryError(`${req.repo.registry} did not answer ${Math.round(state.sinceMs)} ms ago; not trying again yet`);
    const policy = state.kind === 'probe' ? probePolicy(req.policy) : req.policy;
    let bytes: number;
    try {
      bytes = await fillRange(clientFor(req, policy), blobFor(req), req.digest, req.position, req.length);
    } catch (err) {
      if (err instanceof RegistryUnavailableError) markDown(req.cacheDir, req.repo.registry);
      throw err;
    }
    if (state.kind === 'probe') markUp(req.cacheDir, req.repo.registry);
    reply({ id: req.id, ok: true, bytes });
  } catch (err) {
    const replaced = err instanceof BlobCacheError && /replaced/.test(err.message);
    reply({ id: req.id, ok: false, message: err instanceof Error ? err.message : String(err), ...(replaced ? { replaced } : {}) });
  }
}

parentPort!.once('message', (m: { port: MessagePort }) => {
  port = m.port;
  port.on('message', (req: FetchRequest) => {
    chain = chain.then(() => serve(req));
  });
});
