import type { TreeParams } from './geometry.js';

/** What a hash worker needs to compute level-0 hash blocks straight from a layer file. */
export interface HashJob {
  /** Descriptor of the layer file (descriptors are per process, so a worker can pread it). */
  readonly fd: number;
  /** Added to every data position (for a FileByteSource window). */
  readonly fileOffset: number;
  readonly params: TreeParams;
  readonly hashStartBlock: number;
  readonly salt: Uint8Array;
}

/** Messages to a worker: start a job (workers are pooled and reused across jobs), or compute level-0 hash blocks [first, first+count). */
export type HashWorkerRequest =
  | { readonly kind: 'job'; readonly jobId: number; readonly job: HashJob }
  | { readonly kind: 'task'; readonly jobId: number; readonly id: number; readonly first: number; readonly count: number };

/** Posted once by a worker when its module has loaded: tasks are only handed to ready workers. */
export interface HashWorkerReady {
  readonly ready: true;
}

export type HashWorkerReply =
  | { readonly jobId: number; readonly id: number; readonly ok: true; readonly blocks: ArrayBuffer }
  | { readonly jobId: number; readonly id: number; readonly ok: false; readonly truncatedAt?: number; readonly message: string };
