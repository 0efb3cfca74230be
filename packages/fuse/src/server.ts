/**
 * FuseServer: mounts a FileSystem and serves it until the mount goes away.
 *
 * Worker mode (FileSystem given as {module, options}): a session worker thread loops
 * readSync(/dev/fuse) → handle → writevSync; READs can be queued to N read workers, each with
 * its own FileSystem instance, that reply on the same fd. The main thread only supervises.
 *
 * In-thread mode (FileSystem object): the session runs on the calling thread with one
 * asynchronous read outstanding. Simple, but the calling thread must not touch the mount
 * synchronously (nobody would answer).
 */
import { spawnSync } from 'node:child_process';
import { closeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { openFuseDevice } from './device.js';
import { FileSystemLoadError, FuseError } from './errors.js';
import { type FileSystem, type FileSystemModule, isFileSystemModule } from './filesystem.js';
import { moduleUrl } from './fs-module.js';
import { describeError, fdLogger, type Log } from './log.js';
import { checkMountNames, checkMountpoint, mountFuse, setReadAhead, unmountFuse } from './mount.js';
import { findMount } from './mountinfo.js';
import { ReadQueue } from './read-queue.js';
import { deviceWriter, type LoopEnd, runCallbackLoop } from './request-loop.js';
import { DEFAULT_SESSION_CONFIG, type NegotiatedInit, type ReaddirplusMode, Session, type SessionConfig } from './session.js';
import { Stats, type StatsSnapshot } from './stats.js';
import {
  CONTROL_INTS,
  CONTROL_STATE,
  type ReadWorkerData,
  type SessionWorkerData,
  STATE_ABORT,
  STATE_GO,
  type WorkerMessage,
} from './worker-protocol.js';

/**
 * Measured default (README, Benchmarks): on the 2-core test machine, handing READs to read
 * workers cost more CPU per byte and won only with an idle second core.
 */
export const DEFAULT_READ_WORKERS = 0;
export const MAX_READ_WORKERS = 64;

export interface FuseTimeouts {
  /** Seconds a name lookup stays cached (default 86400). */
  entry?: number;
  /** Seconds attributes stay cached (default 86400). */
  attr?: number;
  /** Seconds a missing name stays cached (default 86400; 0 ⇒ ENOENT, nothing cached). */
  negative?: number;
}

export interface FuseServerOptions {
  mountpoint: string;
  /** {module, options} ⇒ worker threads; a FileSystem object ⇒ served on this thread. */
  fs: FileSystem | FileSystemModule;
  /** Threads answering READ besides the session thread (worker mode only). Default 0. */
  readWorkers?: number;
  /** Let other users access the mount (non-root needs user_allow_other in /etc/fuse.conf). */
  allowOther?: boolean;
  /** Mount nosuid / nodev (default true for both). */
  nosuid?: boolean;
  nodev?: boolean;
  /** Filesystem type shows as fuse.<subtype> (default "tsfuse"). */
  subtype?: string;
  /** Mount source shown in mountinfo (default: the subtype). */
  fsname?: string;
  /** Log every request. */
  debug?: boolean;
  timeouts?: FuseTimeouts;
  readdirplus?: ReaddirplusMode;
  /** Pages per request (1..256; default 256 = 1 MiB). */
  maxPages?: number;
  maxBackground?: number;
  /** Where to open the FUSE device (default /dev/fuse). */
  devicePath?: string;
  /** File descriptor for log lines (default 2, stderr). */
  logFd?: number;
  /** Unmount when one of these signals arrives (e.g. ["SIGTERM", "SIGINT"]). */
  unmountOnSignals?: NodeJS.Signals[];
  /** How long to wait for the kernel's INIT after mount(8) succeeded (default 10 s). */
  initTimeoutMs?: number;
  /**
   * Kernel readahead for this mount in KiB (default 1024, matching 1 MiB requests; the kernel
   * default is 128). Needs host root; silently kept at the kernel's value elsewhere. 0 = leave.
   */
  readAheadKiB?: number;
}

export interface CloseInfo {
  /** 'unmounted': the kernel ended the session; 'failed': the server broke (see detail). */
  reason: 'unmounted' | 'failed';
  detail: string;
}

interface WorkerHandle {
  readonly worker: Worker;
  readonly name: string;
  readonly exited: Promise<void>;
  /** First message: 'ready' or 'load-error'. */
  readonly ready: Promise<void>;
  error: Error | undefined;
}

function checkTimeout(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0) throw new RangeError(`timeouts.${name} must be a number >= 0, got ${v}`);
  return v;
}

function buildConfig(o: FuseServerOptions): SessionConfig {
  const maxPages = o.maxPages ?? DEFAULT_SESSION_CONFIG.maxPages;
  if (!Number.isInteger(maxPages) || maxPages < 1 || maxPages > 256) throw new RangeError(`maxPages must be 1..256, got ${maxPages}`);
  const maxBackground = o.maxBackground ?? DEFAULT_SESSION_CONFIG.maxBackground;
  if (!Number.isInteger(maxBackground) || maxBackground < 1 || maxBackground > 65535) throw new RangeError(`maxBackground must be 1..65535`);
  const readdirplus = o.readdirplus ?? DEFAULT_SESSION_CONFIG.readdirplus;
  if (!['auto', 'always', 'never'].includes(readdirplus)) throw new RangeError(`readdirplus must be auto, always or never`);
  return {
    entryTimeout: checkTimeout('entry', o.timeouts?.entry, DEFAULT_SESSION_CONFIG.entryTimeout),
    attrTimeout: checkTimeout('attr', o.timeouts?.attr, DEFAULT_SESSION_CONFIG.attrTimeout),
    negativeTimeout: checkTimeout('negative', o.timeouts?.negative, DEFAULT_SESSION_CONFIG.negativeTimeout),
    readdirplus,
    maxPages,
    maxBackground,
    congestionThreshold: Math.max(1, Math.floor((maxBackground * 3) / 4)),
    debug: o.debug ?? false,
  };
}

export class FuseServer {
  /** Canonical absolute mountpoint. */
  readonly mountpoint: string;
  /** Resolves once the session is over (unmounted, or the server failed) and the fd is closed. */
  readonly closed: Promise<CloseInfo>;
  /** What INIT negotiated with the kernel. */
  negotiated: NegotiatedInit | undefined;

  private readonly statsCounters = new Stats();
  private readonly log: Log;
  private fdOpen = true;
  private isClosed = false;
  private resolveClosed!: (info: CloseInfo) => void;
  private readonly cleanups: (() => void)[] = [];
  private unmounting: Promise<void> | undefined;
  private started = false;

  private constructor(
    mountpoint: string,
    private readonly fd: number,
    logFd: number,
  ) {
    this.mountpoint = mountpoint;
    this.log = fdLogger(logFd, `fuse ${mountpoint}: `);
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  /**
   * Checks the mountpoint, opens /dev/fuse, mounts with mount(8) and waits for the kernel's
   * INIT. Throws MountpointError, FuseDeviceError, FileSystemLoadError or MountCommandError;
   * on failure nothing stays mounted or open.
   */
  static async mount(options: FuseServerOptions): Promise<FuseServer> {
    const config = buildConfig(options);
    const workerMode = isFileSystemModule(options.fs);
    const readWorkers = options.readWorkers ?? (workerMode ? DEFAULT_READ_WORKERS : 0);
    if (options.readAheadKiB !== undefined && (!Number.isInteger(options.readAheadKiB) || options.readAheadKiB < 0)) {
      throw new RangeError(`readAheadKiB must be an integer >= 0, got ${options.readAheadKiB}`);
    }
    if (!Number.isInteger(readWorkers) || readWorkers < 0 || readWorkers > MAX_READ_WORKERS) {
      throw new RangeError(`readWorkers must be an integer in 0..${MAX_READ_WORKERS}, got ${readWorkers}`);
    }
    if (!workerMode && readWorkers > 0) {
      throw new RangeError('read workers need the FileSystem as {module, options} (a FileSystem object cannot move between threads)');
    }
    const subtype = options.subtype ?? 'tsfuse';
    const fsname = options.fsname ?? subtype;
    // Everything that can be checked without side effects comes before opening the device.
    checkMountNames(subtype, fsname);
    const spec = workerMode ? { module: moduleUrl((options.fs as FileSystemModule).module), options: (options.fs as FileSystemModule).options } : undefined;
    const mountpoint = checkMountpoint(options.mountpoint);
    const fd = openFuseDevice(options.devicePath);
    const server = new FuseServer(mountpoint, fd, options.logFd ?? 2);
    const mountCommand = {
      fd,
      mountpoint,
      subtype,
      fsname,
      allowOther: options.allowOther ?? false,
      nosuid: options.nosuid ?? true,
      nodev: options.nodev ?? true,
    };
    const initTimeout = options.initTimeoutMs ?? 10_000;
    const signals = options.unmountOnSignals ?? [];
    const held = holdSignals(signals);
    try {
      if (spec) {
        await server.startWorkers(spec, config, readWorkers, options.logFd ?? 2, mountCommand, initTimeout);
      } else {
        await server.startInThread(options.fs as FileSystem, config, mountCommand, initTimeout);
      }
    } catch (err) {
      held.release();
      server.finish({ reason: 'failed', detail: `start-up failed: ${(err as Error).message}` });
      throw err;
    }
    const readAhead = options.readAheadKiB ?? 1024;
    if (readAhead > 0 && !setReadAhead(mountpoint, readAhead) && config.debug) {
      server.log(`could not set read_ahead_kb (not host root?); kernel default kept`);
    }
    server.started = true;
    server.installHooks(signals, workerMode);
    held.release();
    const stopped = held.received();
    if (stopped !== undefined) {
      await server.unmount();
      throw new FuseError(`${stopped} while mounting ${mountpoint}: unmounted again`);
    }
    return server;
  }

  /** Request counters of all threads. */
  stats(): StatsSnapshot {
    return this.statsCounters.snapshot();
  }

  /**
   * Unmounts (lazily: a busy mount is detached now and ends when its last user leaves) and
   * resolves with the session's end once every thread has stopped.
   */
  async unmount(): Promise<CloseInfo> {
    if (!this.isClosed) {
      this.unmounting ??= unmountFuse(this.mountpoint, { lazy: true }).catch((err: unknown) => {
        // Someone else unmounted first: fine. Anything else is worth raising.
        if (!this.isClosed && findMount(this.mountpoint)) throw err;
      });
      await this.unmounting;
    }
    return this.closed;
  }

  // --- worker mode -----------------------------------------------------------------------

  private async startWorkers(
    spec: FileSystemModule,
    config: SessionConfig,
    readWorkers: number,
    logFd: number,
    mountCommand: Parameters<typeof mountFuse>[0],
    initTimeout: number,
  ): Promise<void> {
    const control = new Int32Array(new SharedArrayBuffer(CONTROL_INTS * 4));
    const queue = readWorkers > 0 ? ReadQueue.create(256) : undefined;
    const logPrefix = `fuse ${this.mountpoint}: `;
    const sessionData: SessionWorkerData = {
      role: 'session',
      fd: this.fd,
      fs: spec,
      config,
      control: control.buffer as SharedArrayBuffer,
      stats: this.statsCounters.buffer,
      queue: queue?.buffer,
      logFd,
      logPrefix,
    };
    let initReceived!: (n: NegotiatedInit) => void;
    const initPromise = new Promise<NegotiatedInit>((resolve) => {
      initReceived = resolve;
    });
    let sessionEnd: string | undefined;
    const session = this.spawnWorker('session', new URL('./session-worker.js', import.meta.url), sessionData, (m) => {
      if (m.type === 'init') {
        this.negotiated = m.negotiated;
        initReceived(m.negotiated);
      } else if (m.type === 'closed') {
        sessionEnd = m.reason;
      }
    });
    const readers: WorkerHandle[] = [];
    for (let i = 0; i < readWorkers; i++) {
      const data: ReadWorkerData = { role: 'read', index: i, fd: this.fd, fs: spec, stats: this.statsCounters.buffer, queue: queue!.buffer, logFd, logPrefix };
      readers.push(this.spawnWorker(`read worker ${i}`, new URL('./read-worker.js', import.meta.url), data, () => {}));
    }
    const all = [session, ...readers];
    // Once every thread has ended: close the fd and report.
    const finished = Promise.all(all.map((w) => w.exited)).then(() => {
      const failure = all.find((w) => w.error)?.error;
      const clean = sessionEnd === 'unmounted' || sessionEnd === 'aborted' || sessionEnd === 'session-ended';
      this.finish(failure === undefined && clean ? { reason: 'unmounted', detail: sessionEnd ?? 'ended' } : { reason: 'failed', detail: failure ? describeError(failure) : (sessionEnd ?? 'session thread exited') });
    });
    // If the session thread dies while mounted, nobody answers the kernel: detach the mount
    // so that users get errors instead of hanging, and let the read workers go.
    let mountStarted = false;
    void session.exited.then(() => {
      queue?.stop();
      if (mountStarted && (sessionEnd === undefined || sessionEnd.startsWith('error'))) {
        this.log(`session thread ended (${sessionEnd ?? session.error?.message ?? 'no reason'}); detaching the mount`);
        if (findMount(this.mountpoint)) void unmountFuse(this.mountpoint, { lazy: true }).catch(() => {});
      }
    });
    this.cleanups.push(() => queue?.stop());

    const abort = async (err: unknown): Promise<never> => {
      Atomics.store(control, CONTROL_STATE, STATE_ABORT);
      Atomics.notify(control, CONTROL_STATE);
      queue?.stop();
      await finished;
      throw err;
    };

    try {
      await Promise.all(all.map((w) => w.ready));
    } catch (err) {
      return abort(err);
    }
    Atomics.store(control, CONTROL_STATE, STATE_GO);
    Atomics.notify(control, CONTROL_STATE);
    mountStarted = true;
    try {
      await mountFuse(mountCommand);
    } catch (err) {
      return abort(err);
    }
    await this.awaitInit(initPromise, initTimeout);
  }

  private spawnWorker(name: string, url: URL, data: SessionWorkerData | ReadWorkerData, onMessage: (m: WorkerMessage) => void): WorkerHandle {
    const worker = new Worker(url, { workerData: data, stdout: false, stderr: false });
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      readyResolve = resolve;
      readyReject = reject;
    });
    ready.catch(() => {}); // observed by mount(); avoid an unhandled rejection if mount already failed
    const handle: WorkerHandle = {
      worker,
      name,
      error: undefined,
      ready,
      exited: new Promise<void>((resolve) => {
        worker.on('exit', (code) => {
          if (code !== 0 && !handle.error) handle.error = new FuseError(`${name} exited with code ${code}`);
          readyReject(handle.error ?? new FuseError(`${name} exited before it was ready`));
          resolve();
        });
      }),
    };
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') readyResolve();
      else if (m.type === 'load-error') readyReject(new FileSystemLoadError(m.message, m.filesystemMessage === undefined ? {} : { filesystemMessage: m.filesystemMessage }));
      onMessage(m);
    });
    worker.on('error', (err) => {
      handle.error = err;
      this.log(`${name} failed: ${describeError(err)}`);
      readyReject(err);
    });
    return handle;
  }

  // --- in-thread mode --------------------------------------------------------------------

  private async startInThread(fs: FileSystem, config: SessionConfig, mountCommand: Parameters<typeof mountFuse>[0], initTimeout: number): Promise<void> {
    const session = new Session(fs, config, deviceWriter(this.fd), this.log, this.statsCounters);
    let aborted = false;
    let initReceived!: (n: NegotiatedInit) => void;
    const initPromise = new Promise<NegotiatedInit>((resolve) => {
      initReceived = resolve;
    });
    let ended!: () => void;
    const endedPromise = new Promise<void>((resolve) => {
      ended = resolve;
    });
    runCallbackLoop(
      this.fd,
      session,
      () => aborted,
      this.log,
      () => {
        this.negotiated = session.negotiated;
        initReceived(session.negotiated!);
      },
      (end: LoopEnd) => {
        try {
          fs.close?.();
        } catch (err) {
          this.log(`FileSystem close failed: ${describeError(err)}`);
        }
        const clean = end === 'unmounted' || end === 'aborted' || end === 'session-ended';
        this.finish(clean ? { reason: 'unmounted', detail: end } : { reason: 'failed', detail: end });
        ended();
      },
    );
    try {
      await mountFuse(mountCommand);
    } catch (err) {
      aborted = true;
      await endedPromise;
      throw err;
    }
    await this.awaitInit(initPromise, initTimeout);
  }

  // --- shared ----------------------------------------------------------------------------

  private async awaitInit(initPromise: Promise<NegotiatedInit>, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      initPromise.then(() => 'init' as const),
      this.closed.then(() => 'closed' as const),
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (outcome === 'init') return;
    if (outcome === 'timeout') {
      await this.unmount().catch(() => {});
      throw new FuseError(`the kernel did not send INIT within ${timeoutMs} ms after mounting ${this.mountpoint}; unmounted again`);
    }
    const info = await this.closed;
    throw new FuseError(`the session of ${this.mountpoint} ended during start-up: ${info.detail}`);
  }

  private installHooks(signals: NodeJS.Signals[], workerMode: boolean): void {
    if (this.isClosed) return;
    if (workerMode) {
      // process.exit() waits for worker threads, and ours sit in read(2) on /dev/fuse until
      // the kernel ends the session: detach the mount so the exit can complete. Safe to do
      // synchronously here because the session thread, not this one, answers umount's stat.
      const onExit = (): void => {
        if (!this.isClosed) spawnSync('umount', ['-l', this.mountpoint], { stdio: 'ignore', timeout: 10_000 });
      };
      process.on('exit', onExit);
      this.cleanups.push(() => process.off('exit', onExit));
    }
    for (const signal of signals) {
      const onSignal = (): void => {
        this.log(`${signal}: unmounting`);
        this.unmount().catch((err: unknown) => this.log(`unmount on ${signal} failed: ${describeError(err)}`));
      };
      process.on(signal, onSignal);
      this.cleanups.push(() => process.off(signal, onSignal));
    }
  }

  private finish(info: CloseInfo): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const c of this.cleanups.splice(0)) c();
    if (this.fdOpen) {
      this.fdOpen = false;
      try {
        closeSync(this.fd);
      } catch {
        // Already closed; nothing to release.
      }
    }
    // Start-up failures reach the caller as exceptions; only log what nobody else reports.
    if (info.reason === 'failed' && this.started) this.log(`session ended: ${info.detail}`);
    this.resolveClosed(info);
  }
}

/**
 * Until release(), `signals` only note that they came. A stop signal while mounting is acted on
 * once the mount is there (or has failed): dying half-way would leave mount(8), already started,
 * to finish a mount nobody serves.
 */
function holdSignals(signals: readonly NodeJS.Signals[]): { received: () => NodeJS.Signals | undefined; release: () => void } {
  let first: NodeJS.Signals | undefined;
  const notes = signals.map((s) => {
    const note = (): void => {
      first ??= s;
    };
    process.on(s, note);
    return () => process.off(s, note);
  });
  return { received: () => first, release: () => notes.forEach((off) => off()) };
}
