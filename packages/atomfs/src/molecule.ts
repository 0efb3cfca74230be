import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { findMount } from '@atomfs/fuse';
import type { Layer as OciLayer } from '@atomfs/oci';
import { layerSpecs, type LayerSpec } from './layers/layer-spec.js';
import { CommandError } from './errors.js';
import { isHostRoot, kernelDmVerityAvailable, mountNamespaceId } from './host.js';
import { FileLock } from './lock.js';
import { resolveTarget } from './target.js';
import { ensureStateDir, escapeTarget, findRecord, metadirFor, namespaceDir, readRecord, runtimeDir, type Backend, type MountRecord } from './metadir.js';
import type { MountBackend, UpperDirs } from './mount/backend.js';
import { fuseBackend } from './mount/fuse-backend.js';
import { Journal } from './mount/journal.js';
import { kernelBackend } from './mount/kernel-backend.js';
import { isOurServer, stepsFromMountTable, undoMounts, undoRecord, waitForExit } from './undo.js';

export { resolveTarget };
export { OVERLAY_OPTIONS } from './mount/overlay.js';

const BACKENDS: Record<Backend, MountBackend> = { kernel: kernelBackend, fuse: fuseBackend };

export interface MountOptions {
  ociDir: string;
  tag: string;
  target: string;
  layers: readonly OciLayer[];
  writeable: boolean;
  /** Go atomfs's --persist: upper dir DIR/persist, work dir DIR/work. */
  persist: string | undefined;
  /** Upper dir receiving the changes directly; its work dir is made beside it, removed at umount. */
  upper?: string | undefined;
  allowMissingVerity: boolean;
  metadirFlag: string | undefined;
  backend: 'auto' | Backend;
  /** Add nosuid / nodev (host root mounts honour setuid bits and device nodes otherwise, as the kernel path). */
  nosuid?: boolean;
  nodev?: boolean;
  /** Aborting (e.g. on Ctrl-C) undoes every step made and fails with InterruptedError. */
  signal?: AbortSignal;
  debug: (msg: string) => void;
}

/** Which backend serves this image (see README: kernel only as host root without verity). */
export function chooseBackend(o: Pick<MountOptions, 'backend' | 'layers' | 'debug'>): Backend {
  const hostRoot = isHostRoot();
  const hashes = o.layers.some((l) => l.rootHash !== undefined);
  const dm = kernelDmVerityAvailable();
  if (o.backend === 'kernel') {
    if (!hostRoot) throw new CommandError('--backend kernel needs host root (loop devices); use --backend fuse');
    if (hashes && !dm.ok) throw new CommandError(`--backend kernel cannot verify the layers' root hashes: ${dm.why}; use --backend fuse`);
    return 'kernel';
  }
  if (o.backend === 'fuse') return 'fuse';
  if (hostRoot && (!hashes || dm.ok)) return 'kernel';
  if (hostRoot) o.debug(`layers carry root hashes but kernel dm-verity is unusable here (${dm.why}): using the FUSE server, which checks every block in userspace`);
  return 'fuse';
}

/** The per-target lock: one mount or umount of a target at a time. */
function lockTarget(target: string, metadirFlag: string | undefined): FileLock {
  const dir = ensureStateDir(metadirFlag, 'lock', mountNamespaceId());
  const lock = FileLock.acquire(join(dir, `${escapeTarget(target)}.lock`));
  if (lock === undefined) throw new CommandError(`${target} is already being mounted or unmounted by another atomfs command`);
  return lock;
}

/**
 * Mount an image at `target` (resolved with resolveTarget). Every step is recorded in
 * config.json before it can take effect; any failure or interruption undoes all of them in
 * reverse and removes the metadir (Go atomfs leaks here).
 */
export async function mountImage(o: MountOptions): Promise<MountRecord> {
  const target = resolveTarget(o.target);
  const specs = layerSpecs(o.layers, o.allowMissingVerity);
  const backend = chooseBackend(o);
  ensureStateDir(o.metadirFlag, 'meta', mountNamespaceId());
  const lock = lockTarget(target, o.metadirFlag);
  try {
    await clearEarlierMount(target, o.metadirFlag, o.debug);
    const metadir = metadirFor(target, o.metadirFlag);
    refuseInside(target, metadir, 'the metadata dir (--metadir)');
    if (o.upper !== undefined) refuseInside(target, resolve(o.upper), '--upper');
    if (o.persist !== undefined) refuseInside(target, resolve(o.persist), '--persist');
    o.debug(`backend ${backend}, metadir ${metadir}`);
    return await mountSteps({ ...o, target }, specs, backend, metadir);
  } finally {
    lock.release();
  }
}

/** A dir the mount needs after it is made must not lie under the target, where the mount hides it. */
function refuseInside(target: string, dir: string, what: string): void {
  if (dir === target || dir.startsWith(target === '/' ? '/' : `${target}/`)) {
    throw new CommandError(`${what} ${dir} is inside the target ${target}, where the mount would hide it; choose a dir outside it`);
  }
}

/**
 * A record for `target` left by an earlier mount: refuse if that mount is live and complete,
 * else finish it off (server killed, plain umount, a mount interrupted at any step).
 */
async function clearEarlierMount(target: string, metadirFlag: string | undefined, debug: (m: string) => void): Promise<void> {
  const found = findRecord(target, metadirFlag);
  if (found !== undefined) {
    const { metadir, record } = found;
    if (record.atomfs.complete !== false && findMount(target) !== undefined) {
      throw new CommandError(`${target} is already mounted by atomfs (metadata in ${metadir}); run 'atomfs umount ${target}' first`);
    }
    debug(`cleaning up the earlier mount recorded in ${metadir}`);
    const errors = undoRecord(metadir, record, debug);
    if (errors.length > 0) throw new CommandError(`cannot clean up the earlier mount at ${target}: ${errors.join('; ')}`);
    removeWorkDir(record);
    rmSync(metadir, { recursive: true, force: true });
  }
  // A metadir without a record: an interrupted mount that had not written one yet.
  rmSync(metadirFor(target, metadirFlag), { recursive: true, force: true });
  if (findMount(target) !== undefined) throw new CommandError(`${target} is already a mountpoint; unmount it first`);
}

async function mountSteps(o: MountOptions, specs: LayerSpec[], backend: Backend, metadir: string): Promise<MountRecord> {
  const target = o.target;
  const writeable = o.writeable || o.persist !== undefined || o.upper !== undefined;
  const record: MountRecord = {
    OCIDir: o.ociDir,
    Tag: o.tag,
    Target: target,
    AddWriteableOverlay: writeable,
    WriteableOverlayPath: o.persist ?? o.upper ?? '',
    AllowMissingVerityData: o.allowMissingVerity,
    MetadataDir: o.metadirFlag ?? '',
    atomfs: { backend, layers: specs, mounts: [], complete: false },
  };
  mkdirSync(join(metadir, 'mounts'), { recursive: true, mode: 0o700 });
  const journal = new Journal(metadir, record, o.signal);
  try {
    const upper = writeable ? upperDirs(o, metadir, record) : undefined;
    if (upper !== undefined) journal.save();
    await BACKENDS[backend].mount(
      { target, layers: o.layers, specs, upper, nosuid: o.nosuid === true, nodev: o.nodev === true, metadirFlag: o.metadirFlag, signal: o.signal },
      journal,
    );
    record.atomfs.complete = true;
    journal.save();
    return record;
  } catch (err) {
    const errors = undoRecord(metadir, record, o.debug);
    if (errors.length === 0) {
      removeWorkDir(record);
      rmSync(metadir, { recursive: true, force: true });
    }
    if (errors.length > 0) throw new CommandError(`${(err as Error).message}; undoing it failed: ${errors.join('; ')}`);
    throw err;
  }
}

/**
 * Where the writable overlay keeps changes: --upper DIR itself, --persist DIR/persist (Go), or
 * the metadir (lost at umount). overlayfs wants the work dir empty and on the upper dir's
 * filesystem: the metadir's when it is the same one, else a hidden dir beside the upper dir.
 */
function upperDirs(o: MountOptions, metadir: string, record: MountRecord): UpperDirs {
  if (o.upper === undefined) {
    const base = o.persist !== undefined ? resolve(o.persist) : metadir;
    const dirs = { upper: join(base, 'persist'), work: join(base, 'work') };
    mkdirSync(dirs.upper, { recursive: true, mode: 0o755 });
    mkdirSync(dirs.work, { recursive: true, mode: 0o755 });
    return dirs;
  }
  const upper = resolve(o.upper);
  mkdirSync(upper, { recursive: true, mode: 0o755 });
  const sameFs = statSync(upper).dev === statSync(metadir).dev;
  const work = sameFs ? join(metadir, 'work') : join(dirname(upper), `.${basename(upper)}.atomfs-work`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { mode: 0o700 });
  if (!sameFs) record.atomfs.workDir = work;
  return { upper, work };
}

function removeWorkDir(record: MountRecord): void {
  const w = record.atomfs.workDir;
  if (w !== undefined && basename(w).endsWith('.atomfs-work')) rmSync(w, { recursive: true, force: true });
}

/** Undo what `mountImage` recorded for `target` and remove its metadir (not an upper/persist dir). */
export async function umountImage(targetArg: string, metadirFlag: string | undefined, debug: (m: string) => void): Promise<void> {
  const target = resolveTarget(targetArg);
  ensureStateDir(metadirFlag, 'meta', mountNamespaceId());
  const lock = lockTarget(target, metadirFlag);
  try {
    const found = findRecord(target, metadirFlag);
    if (found === undefined) return await umountUnrecorded(target, metadirFlag, debug);
    const { metadir, record } = found;
    const errors = undoRecord(metadir, record, debug);
    if (errors.length > 0) throw new CommandError(errors.join('; '));
    const pid = record.atomfs.serverPid;
    if (pid !== undefined && isOurServer(pid, metadir)) await waitForExit(pid, 5000);
    removeWorkDir(record);
    rmSync(metadir, { recursive: true, force: true });
  } finally {
    lock.release();
  }
}

/**
 * No record: a mount of `atomfs sqfs mount`, or an image mount whose metadir was deleted while
 * it was live (found from the mount table), or a stale metadir of an interrupted mount.
 */
async function umountUnrecorded(target: string, metadirFlag: string | undefined, debug: (m: string) => void): Promise<void> {
  const metadir = metadirFor(target, metadirFlag);
  const nsDir = namespaceDir(metadirFlag);
  const steps = stepsFromMountTable(target, nsDir);
  if (steps !== undefined) {
    const errs = undoMounts(steps, () => true, debug);
    if (errs.length > 0) throw new CommandError(errs.join('; '));
    rmSync(metadir, { recursive: true, force: true });
    // A mount whose directory was renamed (mv of a parent) has its metadata under the old
    // path; once its server is gone that record is debris: remove such records.
    await removeDeadServerRecords(nsDir, debug);
    return;
  }
  const m = findMount(target);
  if (m === undefined) {
    try {
      rmSync(metadir, { recursive: true });
      return; // a stale dir from an interrupted mount
    } catch {
      // nothing there either
    }
  }
  throw new CommandError(`${target} is not an atomfs mountpoint`);
}

/**
 * Remove the metadirs in `nsDir` of FUSE mounts that are over: the recorded server is not
 * running and none of the recorded mounts exists. Records still being written are locked by
 * their mount command; complete ones with a running server are live: neither is touched.
 */
async function removeDeadServerRecords(nsDir: string, debug: (m: string) => void): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(nsDir);
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(nsDir, name);
    let r: MountRecord | undefined;
    try {
      r = readRecord(dir);
    } catch {
      continue; // not ours to judge
    }
    const pid = r?.atomfs.serverPid;
    if (r === undefined || pid === undefined || r.atomfs.complete === false || r.atomfs.mounts.some((m) => findMount(m.target) !== undefined)) continue;
    // The server of the mount just unmounted may still be exiting.
    await waitForExit(pid, 2000);
    if (isOurServer(pid, dir)) continue;
    debug(`removing the metadata of ${r.Target}: its server ${pid} has ended`);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The runtime dir in use, for messages. */
export function stateDir(metadirFlag: string | undefined): string {
  return runtimeDir(metadirFlag);
}
