/** Messages between a RemoteBlobSource (a thread that must read synchronously) and its fetcher thread. */
import type { RemoteRepository, RetryPolicy } from './client.js';

export interface FetchRequest {
  readonly id: number;
  readonly repo: RemoteRepository;
  readonly policy: RetryPolicy;
  readonly digest: string;
  readonly size: number;
  readonly cacheDir: string;
  /** Inode of the requester's data file: the fetcher writes only into that file. */
  readonly ino: number;
  readonly position: number;
  readonly length: number;
}

export type FetchReply = { readonly id: number; readonly ok: true; readonly bytes: number } | { readonly id: number; readonly ok: false; readonly message: string; readonly replaced?: boolean };

export interface FetcherData {
  /** Int32 counter the fetcher bumps (and notifies) after posting each reply. */
  readonly signal: SharedArrayBuffer;
}
