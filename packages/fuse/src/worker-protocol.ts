/** Messages and start-up data exchanged between the server (main thread) and its workers. */
import type { FileSystemModule } from './filesystem.js';
import type { NegotiatedInit, SessionConfig } from './session.js';

/** control[CONTROL_STATE]: what the session thread may do with the device. */
export const CONTROL_STATE = 0;
export const STATE_WAIT = 0;
export const STATE_GO = 1;
export const STATE_ABORT = 2;
export const CONTROL_INTS = 4;

export interface SessionWorkerData {
  readonly role: 'session';
  readonly fd: number;
  readonly fs: FileSystemModule;
  readonly config: SessionConfig;
  readonly control: SharedArrayBuffer;
  readonly stats: SharedArrayBuffer;
  readonly queue: SharedArrayBuffer | undefined;
  readonly logFd: number;
  readonly logPrefix: string;
}

export interface ReadWorkerData {
  readonly role: 'read';
  readonly index: number;
  readonly fd: number;
  readonly fs: FileSystemModule;
  readonly stats: SharedArrayBuffer;
  readonly queue: SharedArrayBuffer;
  readonly logFd: number;
  readonly logPrefix: string;
}

export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'load-error'; readonly message: string; readonly filesystemMessage?: string }
  | { readonly type: 'init'; readonly negotiated: NegotiatedInit }
  | { readonly type: 'closed'; readonly reason: string };
