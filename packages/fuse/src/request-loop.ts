/**
 * The loops that read requests from /dev/fuse and feed them to a Session: a blocking one for
 * a worker thread (readSync; leaves the libuv pool alone) and a callback one for the main
 * thread (one fs.read outstanding at a time, so it occupies one pool thread).
 */
import { read, readSync, writevSync } from 'node:fs';
import { describeError, type Log } from './log.js';
import { REQUEST_BUFFER_SIZE, type ReplyWriter, type Session } from './session.js';
import { CONTROL_STATE, STATE_ABORT } from './worker-protocol.js';

export function deviceWriter(fd: number): ReplyWriter {
  return (buffers: Buffer[]) => {
    writevSync(fd, buffers);
  };
}

/** How a loop ended: 'unmounted' (ENODEV), 'aborted' (mount failed before it started), or an error text. */
export type LoopEnd = 'unmounted' | 'aborted' | 'session-ended' | `error: ${string}`;

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/**
 * Reads and handles requests until the kernel ends the connection. Before mount(2) has
 * bound the device, read fails EPERM: poll until it works or `control` says abort.
 */
export function runBlockingLoop(fd: number, session: Session, control: Int32Array, log: Log, onInit: () => void): LoopEnd {
  const buf = Buffer.allocUnsafe(REQUEST_BUFFER_SIZE);
  let initReported = false;
  let mounted = false;
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EINTR' || code === 'EAGAIN') continue; // interrupted request / signal
      if (code === 'ENODEV' || code === 'ECONNABORTED') return 'unmounted';
      if (code === 'EPERM' && !mounted) {
        if (Atomics.load(control, CONTROL_STATE) === STATE_ABORT) return 'aborted';
        sleepMs(1);
        continue;
      }
      log(`reading /dev/fuse failed: ${describeError(err)}`);
      return `error: ${(err as Error).message}`;
    }
    mounted = true;
    session.handle(buf, n);
    if (!initReported && session.negotiated) {
      initReported = true;
      onInit();
    }
    if (session.isEnded) return 'session-ended';
  }
}

/** Same protocol as runBlockingLoop, driven by callbacks on the calling thread's event loop. */
export function runCallbackLoop(
  fd: number,
  session: Session,
  isAborted: () => boolean,
  log: Log,
  onInit: () => void,
  onEnd: (end: LoopEnd) => void,
): void {
  const buf = Buffer.allocUnsafe(REQUEST_BUFFER_SIZE);
  let initReported = false;
  let mounted = false;
  const next = (): void => {
    read(fd, buf, 0, buf.length, null, (err, n) => {
      if (err) {
        const code = err.code;
        if (code === 'ENOENT' || code === 'EINTR' || code === 'EAGAIN') return next();
        if (code === 'ENODEV' || code === 'ECONNABORTED') return onEnd('unmounted');
        if (code === 'EPERM' && !mounted) {
          if (isAborted()) return onEnd('aborted');
          setTimeout(next, 1);
          return;
        }
        log(`reading /dev/fuse failed: ${describeError(err)}`);
        return onEnd(`error: ${err.message}`);
      }
      mounted = true;
      try {
        session.handle(buf, n);
      } catch (e) {
        // Session.handle answers every FileSystem failure itself; this is a bug in the session.
        log(`session failed: ${describeError(e)}`);
      }
      if (!initReported && session.negotiated) {
        initReported = true;
        onInit();
      }
      if (session.isEnded) return onEnd('session-ended');
      next();
    });
  };
  next();
}
