import { spawnSync } from 'node:child_process';
import { closeSync, constants, fstatSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { CommandError } from './errors.js';

/**
 * An exclusive flock(2) on a lock file, held until release() or this process's end (the kernel
 * drops it then, so a killed atomfs never leaves a stale lock). Node has no flock of its own:
 * util-linux's flock(1) takes it on our open file description (passed as its fd 3), and a flock
 * belongs to the description, not to the process that asked, so it stays ours after flock exits.
 * Our fds are close-on-exec: the detached server never inherits it.
 */
export class FileLock {
  private constructor(private fd: number | undefined, readonly file: string) {}

  /** Take the lock; `undefined` if another process holds it (after waiting `waitSeconds`). */
  static acquire(file: string, waitSeconds = 0): FileLock | undefined {
    let fd: number;
    try {
      fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    } catch (err) {
      throw new CommandError(`cannot open lock file ${file}: ${(err as Error).message}`);
    }
    try {
      const me = process.geteuid?.() ?? 0;
      const st = fstatSync(fd);
      if (st.uid !== me) throw new CommandError(`refusing lock file ${file}: owned by uid ${st.uid}, not by you (uid ${me})`);
      const how = waitSeconds > 0 ? ['-w', String(waitSeconds)] : ['-n'];
      const r = spawnSync('flock', ['-x', ...how, '3'], { stdio: ['ignore', 'ignore', 'pipe', fd], encoding: 'utf8' });
      if (r.error !== undefined) throw new CommandError(`cannot run flock(1) (util-linux): ${r.error.message}`);
      if (r.status === 1) {
        closeSync(fd);
        return undefined;
      }
      if (r.status !== 0) throw new CommandError(`flock ${file}: ${r.stderr.trim() || `exit ${r.status}`}`);
      ftruncateSync(fd, 0);
      writeSync(fd, `${process.pid}\n`, 0);
      return new FileLock(fd, file);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  release(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}
