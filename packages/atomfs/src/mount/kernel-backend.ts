import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { closeDmLayerIfUnused, openDmLayer } from '../dm-verity.js';
import { CommandError } from '../errors.js';
import { hashOffsetOf } from '../layers/layer-spec.js';
import { FileLock } from '../lock.js';
import { ensureStateDir } from '../metadir.js';
import { mountSources } from '../undo.js';
import type { BackendMount, MountBackend } from './backend.js';
import type { Journal } from './journal.js';
import { flagOptions, mountOverlay, mustRun } from './overlay.js';

/** Host root: loop (or a shared dm-verity device) + the kernel's squashfs/erofs per layer, overlayfs on top. */
export const kernelBackend: MountBackend = { name: 'kernel', mount: mountKernel };

/** Around dm device opening and closing: devices are shared by every image using a layer. */
function withDmLock<T>(metadirFlag: string | undefined, fn: () => T): T {
  const dir = ensureStateDir(metadirFlag, 'lock');
  const lock = FileLock.acquire(join(dir, 'dm.lock'), 60);
  if (lock === undefined) throw new CommandError('timed out waiting for another atomfs command to finish with dm-verity devices');
  try {
    return fn();
  } finally {
    lock.release();
  }
}

async function mountKernel(o: BackendMount, journal: Journal): Promise<void> {
  const upper = o.upper;
  const lowers: string[] = [];
  const ro = ['ro', ...flagOptions(o)].join(',');
  for (const l of o.layers) {
    const mp = join(journal.metadir, 'mounts', l.hex);
    mkdirSync(mp, { recursive: true });
    if (l.rootHash !== undefined) {
      // Host root with device-mapper: the kernel verifies (shared "<hex>-verity" device).
      const rootHash = l.rootHash;
      await journal.step({ target: mp, kind: 'layer', dm: l.hex }, () =>
        withDmLock(o.metadirFlag, () => {
          const { device } = openDmLayer(l.path, l.hex, rootHash, hashOffsetOf(l));
          try {
            mustRun(['mount', '-t', l.fsType, '-o', ro, device, mp], `mounting layer ${l.digest}`);
          } catch (err) {
            closeDmLayerIfUnused(l.hex, mountSources());
            throw err;
          }
        }),
      );
    } else {
      await journal.step({ target: mp, kind: 'layer' }, () => mustRun(['mount', '-t', l.fsType, '-o', `${ro},loop`, l.path, mp], `mounting layer ${l.digest}`));
    }
    lowers.push(mp);
  }
  if (lowers.length === 1 && upper === undefined) {
    // overlayfs without an upper dir needs two lower dirs.
    const w = join(journal.metadir, 'mounts', 'workaround');
    mkdirSync(w);
    lowers.push(w);
  }
  await journal.step({ target: o.target, kind: 'overlay' }, () => mountOverlay(o, lowers, upper));
}
