import { mkdirSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findMount } from '@atomfs/fuse';
import { startDetached } from '../daemon.js';
import { CommandError } from '../errors.js';
import { isRunning } from '../undo.js';
import type { BackendMount, MountBackend } from './backend.js';
import type { Journal } from './journal.js';
import { mountOverlay } from './overlay.js';

/** Our FUSE server serving the merged layers, every block verified in userspace; overlayfs on top when writable. */
export const fuseBackend: MountBackend = { name: 'fuse', mount: mountFuse };

async function mountFuse(o: BackendMount, journal: Journal): Promise<void> {
  const { specs, upper } = o;
  // The layers are opened by the server alone: one that cannot be (a bad root hash, a corrupt
  // superblock) stops it before it mounts anything, and its error line becomes this command's.
  const metadir = journal.metadir;
  const record = journal.record;
  const fuseTarget = upper !== undefined ? join(metadir, 'mounts', 'merged') : o.target;
  if (upper !== undefined) mkdirSync(fuseTarget);
  const log = join(metadir, 'server.log');
  const specFile = join(metadir, 'serve.json');
  writeFileSync(specFile, JSON.stringify({ mountpoint: fuseTarget, layers: specs, debug: false, nosuid: o.nosuid === true, nodev: o.nodev === true }) + '\n', { mode: 0o600 });
  record.atomfs.serverLog = log;
  await journal.step({ target: fuseTarget, kind: 'fuse' }, async () => {
    const onSpawn = (pid: number) => {
      record.atomfs.serverPid = pid;
      journal.save();
    };
    await startDetached(['__serve', specFile], log, { onSpawn, ...(o.signal !== undefined ? { signal: o.signal } : {}) });
    checkServing(fuseTarget, record.atomfs.serverPid);
  });
  if (upper !== undefined) await journal.step({ target: o.target, kind: 'overlay' }, () => mountOverlay(o, [fuseTarget], upper));
}

/**
 * The server said "ready": make sure the mount is there and answers (a request round trip), so
 * this command never returns success for a server that died right after.
 */
function checkServing(mountpoint: string, pid: number | undefined): void {
  const m = findMount(mountpoint);
  try {
    if (m?.fstype !== 'fuse.atomfs') throw new Error('not mounted');
    statfsSync(mountpoint);
  } catch (err) {
    throw new CommandError(`the server (pid ${pid ?? '?'}) stopped serving ${mountpoint} right after starting: ${(err as Error).message}`);
  }
  if (pid !== undefined && !isRunning(pid)) throw new CommandError(`the server (pid ${pid}) of ${mountpoint} exited right after starting`);
}
