/**
 * A blob of a registry as a synchronous ByteSource, for readers that answer on one thread from
 * start to end (the FUSE server). Bytes come from the host's blob cache with pread; a chunk
 * not there yet is fetched by a fetcher thread while this thread waits on shared memory
 * (Atomics.wait), up to a deadline: a dead registry gives an error (EIO to a FUSE reader),
 * never a hang. Nothing here is verified: the layer's dm-verity check sits on top.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { ByteRangeError, inRange, type ByteSource } from '@atomfs/io';
import { CachedBlob, openCacheDir } from './cache.js';
import { defaultRetryPolicy, worstCaseMs, type RemoteRepository, type RetryPolicy } from './client.js';
import { RemoteReadError } from './errors.js';
import type { FetchReply, FetchRequest } from './fetch-protocol.js';

/** A blob of a repository and where it is cached: what a layer spec carries (no secret). */
export interface RemoteBlob extends RemoteRepository {
  /** `sha256:<hex>`. */
  readonly digest: string;
  readonly size: number;
  /** The blob cache directory (see defaultCacheDir). */
  readonly cacheDir: string;
}

/** The fetcher thread of this thread, shared by its remote sources, started on the first miss. */
class Fetcher {
  private static current: Fetcher | undefined;
  private static users = 0;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly signal = new Int32Array(new SharedArrayBuffer(4));
  private nextId = 1;

  private constructor() {
    const { port1, port2 } = new MessageChannel();
    this.worker = new Worker(new URL('./fetch-worker.js', import.meta.url), { workerData: { signal: this.signal.buffer } });
    this.worker.unref();
    this.worker.postMessage({ port: port2 }, [port2]);
    this.port = port1;
    this.port.unref();
  }

  static acquire(): void {
    Fetcher.users++;
  }

  static release(): void {
    if (--Fetcher.users > 0) return;
    const f = Fetcher.current;
    Fetcher.current = undefined;
    if (f !== undefined) {
      f.port.close();
      void f.worker.terminate();
    }
  }

  static get(): Fetcher {
    return (Fetcher.current ??= new Fetcher());
  }

  /** Post a request and wait (blocking this thread) for its reply, at most `timeoutMs`. */
  request(req: Omit<FetchRequest, 'id'>, timeoutMs: number): FetchReply | undefined {
    const id = this.nextId++;
    let seen = Atomics.load(this.signal, 0);
    this.port.postMessage({ ...req, id });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Replies to earlier requests that timed out arrive late: drop them.
      for (let m = receiveMessageOnPort(this.port); m !== undefined; m = receiveMessageOnPort(this.port)) {
        const r = m.message as FetchReply;
        if (r.id === id) return r;
      }
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      Atomics.wait(this.signal, 0, seen, left);
      seen = Atomics.load(this.signal, 0);
    }
  }
}

export interface RemoteSourceOptions {
  label?: string;
  policy?: RetryPolicy;
}

/** Counters, for tests and the bench. */
export interface RemoteSourceStats {
  misses: number;
  bytesFetched: number;
}

export class RemoteBlobSource implements ByteSource {
  readonly size: number;
  readonly label: string;
  readonly stats: RemoteSourceStats = { misses: 0, bytesFetched: 0 };
  private blob: CachedBlob;
  private readonly policy: RetryPolicy;
  private closed = false;

  constructor(
    readonly remote: RemoteBlob,
    options: RemoteSourceOptions = {},
  ) {
    openCacheDir(remote.cacheDir);
    this.size = remote.size;
    this.label = options.label ?? remote.digest;
    this.policy = options.policy ?? defaultRetryPolicy();
    this.blob = new CachedBlob(remote.cacheDir, remote.digest.slice('sha256:'.length), remote.size);
    Fetcher.acquire();
  }

  read(position: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    this.readInto(position, length, buf);
    return buf;
  }

  readInto(position: number, length: number, dst: Buffer): void {
    if (!inRange(position, length, this.size)) throw new ByteRangeError(this.label, position, length, this.size);
    this.ensure(position, length);
    this.blob.readInto(position, length, dst);
  }

  /** Make [position, position+length) present in the cache, fetching what is missing. */
  private ensure(position: number, length: number): void {
    if (this.blob.missing(position, length).length === 0) return;
    this.stats.misses++;
    for (let tries = 0; ; tries++) {
      const r = Fetcher.get().request(
        {
          repo: { registry: this.remote.registry, repository: this.remote.repository, ...(this.remote.insecure ? { insecure: true } : {}), ...(this.remote.authFile !== undefined ? { authFile: this.remote.authFile } : {}) },
          policy: this.policy,
          digest: this.remote.digest,
          size: this.size,
          cacheDir: this.remote.cacheDir,
          ino: this.blob.ino,
          position,
          length,
        },
        worstCaseMs(this.policy) + 2000,
      );
      if (r === undefined) throw new RemoteReadError(`${this.label}: bytes ${position}-${position + length - 1} not fetched from ${this.remote.registry} in time`);
      if (r.ok) {
        this.stats.bytesFetched += r.bytes;
        break;
      }
      if (r.replaced === true && tries === 0) {
        // The cache entry was removed (trimmed) and made anew: follow it once.
        this.blob.close();
        this.blob = new CachedBlob(this.remote.cacheDir, this.remote.digest.slice('sha256:'.length), this.size);
        continue;
      }
      throw new RemoteReadError(`${this.label}: ${r.message}`);
    }
    if (this.blob.missing(position, length).length !== 0) throw new RemoteReadError(`${this.label}: bytes ${position}-${position + length - 1} still missing after a fetch`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.blob.close();
    Fetcher.release();
  }
}
