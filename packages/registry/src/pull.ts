/** `atomfs pull`: every blob of a remote image into the cache, each checked against its digest. */
import { CachedBlob, cacheMaxBytes, openCacheDir, trimCache } from './cache.js';
import { RegistryClient } from './client.js';
import { RemoteDigestError } from './errors.js';
import { blobDigest, fillRange } from './fetch.js';
import type { RemoteBlob } from './remote-source.js';

export interface PullResult {
  /** Bytes transferred (what was not cached yet). */
  fetched: number;
  /** Sum of the blobs' sizes. */
  total: number;
}

export interface PullOptions {
  /** Range requests in flight per blob (default 4). */
  parallel?: number;
  /** Check the sha256 of each complete blob (default true); a mismatch clears it from the cache and fails. */
  checkDigest?: boolean;
  onBlob?: (digest: string, fetched: number) => void;
}

/** Make `blobs` complete in their cache; each is checked against its digest unless told not to. */
export async function pullBlobs(blobs: readonly RemoteBlob[], options: PullOptions = {}): Promise<PullResult> {
  const result: PullResult = { fetched: 0, total: 0 };
  for (const b of blobs) {
    openCacheDir(b.cacheDir);
    const cached = new CachedBlob(b.cacheDir, b.digest.slice('sha256:'.length), b.size);
    try {
      const client = new RegistryClient(b);
      let fetched = await fillRange(client, cached, b.digest, 0, b.size, options.parallel ?? 4);
      if (options.checkDigest ?? true) {
        let actual = blobDigest(cached);
        if (actual !== b.digest && fetched < b.size) {
          // Bytes cached earlier may be the bad ones (a damaged disk, a registry since repaired):
          // fetch the whole blob once more before blaming the registry.
          cached.clear();
          fetched += await fillRange(client, cached, b.digest, 0, b.size, options.parallel ?? 4);
          actual = blobDigest(cached);
        }
        if (actual !== b.digest) {
          cached.clear();
          throw new RemoteDigestError(`blob ${b.digest} from ${b.registry}/${b.repository}: digest mismatch, content hashes to ${actual}`);
        }
      }
      result.fetched += fetched;
      result.total += b.size;
      options.onBlob?.(b.digest, fetched);
    } finally {
      cached.close();
    }
  }
  return result;
}

/** Trim the caches of `blobs` to the configured bound, keeping these blobs. */
export function trimFor(blobs: readonly RemoteBlob[]): void {
  const keep = new Set(blobs.map((b) => b.digest.slice('sha256:'.length)));
  for (const dir of new Set(blobs.map((b) => b.cacheDir))) trimCache(dir, cacheMaxBytes(), keep);
}
