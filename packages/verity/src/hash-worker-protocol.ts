import type { TreeParams } from './geometry.js';

/** What a hash worker needs to compute level-0 hash blocks straight from the layer file. */
export interface HashWorkerInit {
  /** Descriptor of the layer file (descriptors are per process, so a worker can pread it). */
  readonly fd: number;
  /** Added to every data position (for a FileByteSource window). */
  readonly fileOffset: number;
  readonly params: TreeParams;
  readonly hashStartBlock: number;
  readonly salt: Uint8Array;
}

/** Compute level-0 hash blocks [first, first+count). */
export interface HashWorkerTask {
  readonly id: number;
  readonly first: number;
  readonly count: number;
}

export type HashWorkerReply =
  | { readonly id: number; readonly ok: true; readonly blocks: ArrayBuffer }
  | { readonly id: number; readonly ok: false; readonly truncatedAt?: number; readonly message: string };
