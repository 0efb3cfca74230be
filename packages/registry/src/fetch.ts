/** Filling a cached blob from the registry with range requests. */
import { createHash } from 'node:crypto';
import { CHUNK_BYTES, type CachedBlob, type ChunkRun } from './cache.js';
import type { RegistryClient } from './client.js';
import { RegistryError, RemoteDigestError } from './errors.js';

/** Largest range asked for in one request: a retry repeats at most this much. */
export const MAX_RANGE_BYTES = 8 << 20;

/** Runs cut to at most MAX_RANGE_BYTES each. */
export function splitRuns(runs: readonly ChunkRun[]): ChunkRun[] {
  const per = MAX_RANGE_BYTES / CHUNK_BYTES;
  const out: ChunkRun[] = [];
  for (const r of runs) for (let f = r.first; f < r.first + r.count; f += per) out.push({ first: f, count: Math.min(per, r.first + r.count - f) });
  return out;
}

/** GET one run of a blob by range and store it. */
export async function fetchRun(client: RegistryClient, blob: CachedBlob, digest: string, run: ChunkRun): Promise<number> {
  const { start, end } = blob.runBytes(run);
  const whole = start === 0 && end === blob.size;
  const res = await client.get({
    path: `blobs/${digest}`,
    headers: { Range: `bytes=${start}-${end - 1}` },
    maxBytes: whole ? blob.size : end - start,
    ok: whole ? [200, 206] : [206],
  });
  if (res.status === 206) {
    const cr = res.headers['content-range'];
    const m = typeof cr === 'string' ? /^bytes ([0-9]+)-([0-9]+)\/([0-9]+|\*)$/.exec(cr) : null;
    if (m === null || Number(m[1]) !== start || Number(m[2]) !== end - 1) {
      throw new RegistryError(`blob ${digest}: asked for bytes ${start}-${end - 1}, the registry sent ${String(cr ?? 'no Content-Range')}`);
    }
    if (m[3] !== '*' && Number(m[3]) !== blob.size) throw new RemoteDigestError(`blob ${digest}: the registry says it has ${m[3]} bytes, its descriptor says ${blob.size}`);
  }
  if (res.body.length !== end - start) throw new RegistryError(`blob ${digest}: ${res.body.length} bytes for range ${start}-${end - 1}`);
  blob.store(run, res.body);
  return res.body.length;
}

/** Fetch every missing chunk of [position, position+length), `parallel` requests at a time; returns bytes fetched. */
export async function fillRange(client: RegistryClient, blob: CachedBlob, digest: string, position: number, length: number, parallel = 1): Promise<number> {
  const queue = splitRuns(blob.missing(position, length));
  let fetched = 0;
  const worker = async (): Promise<void> => {
    for (let r = queue.shift(); r !== undefined; r = queue.shift()) fetched += await fetchRun(client, blob, digest, r);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, queue.length)) }, worker));
  return fetched;
}

/** sha256 of the whole cached blob (which must be complete). */
export function blobDigest(blob: CachedBlob): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.min(blob.size, 4 * CHUNK_BYTES));
  for (let pos = 0; pos < blob.size; pos += buf.length) {
    const n = Math.min(buf.length, blob.size - pos);
    blob.readInto(pos, n, buf);
    h.update(buf.subarray(0, n));
  }
  return `sha256:${h.digest('hex')}`;
}
