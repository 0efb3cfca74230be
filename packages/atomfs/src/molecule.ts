import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { findMount } from '@atomfs/fuse';
import type { Layer as OciLayer } from '@atomfs/oci';
import { closeDmLayerIfUnused, openDmLayer } from './dm-verity.js';
import { startDetached } from './daemon.js';
import { hashOffsetOf, layerSpecs } from './layers/layer-spec.js';
import { readMountinfo } from '@atomfs/fuse';
import { CommandError } from './errors.js';
import { isHostRoot, kernelDmVerityAvailable } from './host.js';
import { openOverlayFs } from './fusefs/overlay-fs.js';
import { metadirFor, namespaceDir, readRecord, writeRecord, type Backend, type MountRecord, type MountStep } from './metadir.js';

/** Overlay options of Go atomfs (molecule.OverlayMountOptions). */
export const OVERLAY_OPTIONS = 'index=off,xino=on,userxattr';

export interface MountOptions {
  ociDir: string;
  tag: string;
  target: string;
  layers: readonly OciLayer[];
  writeable: boolean;
  persist: string | undefined;
  allowMissingVerity: boolean;
  metadirFlag: string | undefined;
  backend: 'auto' | Backend;
  debug: (msg: string) => void;
}

function run(argv: string[]): { ok: boolean; err: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  // The last line, minus util-linux's "dmesg(1) may have more information ..." hint, which
  // would otherwise replace the actual reason ("wrong fs type, bad option, bad superblock ...").
  const lines = (r.error?.message ?? r.stderr ?? '').split('\n').map((l) => l.trim());
  const err = lines.filter((l) => l !== '' && !/^dmesg\(1\) may have more information/.test(l)).pop() ?? '';
  return { ok: r.status === 0, err };
}

function mustRun(argv: string[], what: string): void {
  const r = run(argv);
  if (!r.ok) throw new CommandError(`${what}: ${r.err || `${argv[0]} failed`}`);
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


/**
 * Mount an image at `target`. Every mount made is recorded in config.json as it happens; any
 * failure undoes all of them in reverse and removes the metadir (Go atomfs leaks here).
 */
export async function mountImage(o: MountOptions): Promise<MountRecord> {
  const target = o.target;
  const metadir = metadirFor(target, o.metadirFlag);
  const specs = layerSpecs(o.layers, o.allowMissingVerity);
  const backend = chooseBackend(o);
  o.debug(`backend ${backend}, metadir ${metadir}`);

  if (existsSync(metadir)) {
    const old = readRecord(metadir);
    if (findMount(target) !== undefined && old !== undefined) {
      throw new CommandError(`${target} is already mounted by atomfs (metadata in ${metadir}); run 'atomfs umount ${target}' first`);
    }
    // A stale metadir (server killed, plain umount, crash): clean it instead of refusing forever.
    o.debug(`removing stale metadir ${metadir}`);
    if (old !== undefined) undoMounts(old.atomfs.mounts, () => {});
    rmSync(metadir, { recursive: true, force: true });
  }
  if (findMount(target) !== undefined) throw new CommandError(`${target} is already a mountpoint; unmount it first`);
  if (o.writeable && o.persist !== undefined && o.persist === '') throw new CommandError('--persist requires an argument');

  const record: MountRecord = {
    OCIDir: o.ociDir,
    Tag: o.tag,
    Target: target,
    AddWriteableOverlay: o.writeable,
    WriteableOverlayPath: o.persist ?? '',
    AllowMissingVerityData: o.allowMissingVerity,
    MetadataDir: o.metadirFlag ?? '',
    atomfs: { backend, layers: specs, mounts: [] },
  };
  mkdirSync(join(metadir, 'mounts'), { recursive: true });
  const done = (step: MountStep) => {
    record.atomfs.mounts.push(step);
    writeRecord(metadir, record);
  };
  try {
    writeRecord(metadir, record);
    const upperBase = o.persist !== undefined ? resolve(o.persist) : metadir;
    if (backend === 'kernel') {
      const lowers: string[] = [];
      for (const l of o.layers) {
        const mp = join(metadir, 'mounts', l.hex);
        mkdirSync(mp, { recursive: true });
        if (l.rootHash !== undefined) {
          // Host root with device-mapper: the kernel verifies (shared "<hex>-verity" device).
          const { device } = openDmLayer(l.path, l.hex, l.rootHash, hashOffsetOf(l.path));
          try {
            mustRun(['mount', '-t', 'squashfs', '-o', 'ro', device, mp], `mounting layer ${l.digest}`);
          } catch (err) {
            closeDmLayerIfUnused(l.hex, mountSources());
            throw err;
          }
          done({ target: mp, kind: 'layer', dm: l.hex });
        } else {
          mustRun(['mount', '-t', 'squashfs', '-o', 'ro,loop', l.path, mp], `mounting layer ${l.digest}`);
          done({ target: mp, kind: 'layer' });
        }
        lowers.push(mp);
      }
      if (lowers.length === 1 && !o.writeable) {
        // overlayfs without an upper dir needs two lower dirs.
        const w = join(metadir, 'mounts', 'workaround');
        mkdirSync(w);
        lowers.push(w);
      }
      mountOverlay(target, lowers, o.writeable, upperBase);
      done({ target, kind: 'overlay' });
    } else {
      // Open every layer here first: a bad root hash or a corrupt superblock is reported by
      // this command, not buried in a server log.
      openOverlayFs(specs).close();
      const fuseTarget = o.writeable ? join(metadir, 'mounts', 'merged') : target;
      if (o.writeable) mkdirSync(fuseTarget);
      const log = join(metadir, 'server.log');
      const specFile = join(metadir, 'serve.json');
      writeRecordFile(specFile, { mountpoint: fuseTarget, layers: specs, debug: false });
      record.atomfs.serverLog = log;
      record.atomfs.serverPid = await startDetached(['__serve', specFile], log);
      done({ target: fuseTarget, kind: 'fuse' });
      if (o.writeable) {
        mountOverlay(target, [fuseTarget], true, upperBase);
        done({ target, kind: 'overlay' });
      }
    }
    return record;
  } catch (err) {
    undoMounts(record.atomfs.mounts, o.debug);
    rmSync(metadir, { recursive: true, force: true });
    throw err;
  }
}

function mountSources(): string[] {
  return readMountinfo().map((m) => m.source);
}

function writeRecordFile(file: string, value: unknown): void {
  writeFileSync(file, JSON.stringify(value) + '\n', { mode: 0o600 });
}

function mountOverlay(target: string, lowers: string[], writeable: boolean, upperBase: string): void {
  let opts: string;
  if (writeable) {
    const upper = join(upperBase, 'persist');
    const work = join(upperBase, 'work');
    mkdirSync(upper, { recursive: true, mode: 0o755 });
    mkdirSync(work, { recursive: true, mode: 0o755 });
    // Like Go atomfs: the target itself is the top lower dir, so what it held shows through.
    opts = `lowerdir=${[target, ...lowers].join(':')},upperdir=${upper},workdir=${work},${OVERLAY_OPTIONS}`;
  } else {
    opts = `lowerdir=${lowers.join(':')},${OVERLAY_OPTIONS}`;
  }
  if (opts.length > 4096) throw new CommandError('too many lower dirs; must have fewer than 4096 chars');
  mustRun(['mount', '-t', 'overlay', 'overlay', '-o', opts, target], `mounting the overlay at ${target}`);
}

/** Unmount recorded mounts in reverse order; dead FUSE mounts lazily. Returns the errors met. */
export function undoMounts(steps: MountStep[], debug: (m: string) => void): string[] {
  const errors: string[] = [];
  for (const s of [...steps].reverse()) {
    if (findMount(s.target) === undefined) continue;
    let r = run(['umount', s.target]);
    if (!r.ok && isDead(s.target)) r = run(['umount', '-l', s.target]);
    if (!r.ok) errors.push(`unmounting ${s.target}: ${r.err}`);
    else debug(`unmounted ${s.target}`);
  }
  // Shared dm-verity devices go when no mount (of any image) uses them any more.
  for (const s of steps) {
    if (s.dm === undefined) continue;
    try {
      closeDmLayerIfUnused(s.dm, mountSources());
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  return errors;
}

function isDead(path: string): boolean {
  try {
    statSync(path);
    return false;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOTCONN' || code === 'ECONNABORTED';
  }
}

/** Undo what `mountImage` recorded for `target` and remove its metadir (not a --persist dir). */
export async function umountImage(target: string, metadirFlag: string | undefined, debug: (m: string) => void): Promise<void> {
  const metadir = metadirFor(target, metadirFlag);
  const record = readRecord(metadir);
  if (record === undefined) {
    const m = findMount(target);
    if (m !== undefined && m.fstype === 'fuse.atomfs') {
      // Made by `atomfs sqfs mount`, or a mount whose metadata is gone.
      const errs = undoMounts([{ target, kind: 'fuse' }], debug);
      if (errs.length > 0) throw new CommandError(errs.join('; '));
      if (existsSync(metadir)) rmSync(metadir, { recursive: true, force: true });
      // A mount whose directory was renamed (mv of a parent) has its metadata under the old
      // path; once its server is gone that record is debris: remove such records.
      await removeDeadServerRecords(namespaceDir(metadirFlag), debug);
      return;
    }
    if (existsSync(metadir)) {
      // Metadata without a record: a stale dir from an interrupted mount.
      rmSync(metadir, { recursive: true, force: true });
      if (m === undefined) return;
    }
    throw new CommandError(`${target} is not an atomfs mountpoint`);
  }
  const errors = undoMounts(record.atomfs.mounts, debug);
  if (errors.length > 0) throw new CommandError(errors.join('; '));
  if (record.atomfs.serverPid !== undefined) await waitForExit(record.atomfs.serverPid, 5000);
  rmSync(metadir, { recursive: true, force: true });
}

/**
 * Remove the metadirs in `nsDir` of FUSE mounts that are over: the recorded server is not
 * running and none of the recorded mounts exists. A mount still being set up has no serverPid
 * yet, and a live one has a running server, so neither is touched.
 */
async function removeDeadServerRecords(nsDir: string, debug: (m: string) => void): Promise<void> {
  if (!existsSync(nsDir)) return;
  for (const name of readdirSync(nsDir)) {
    const dir = join(nsDir, name);
    const r = readRecord(dir);
    const pid = r?.atomfs.serverPid;
    if (r === undefined || pid === undefined || r.atomfs.mounts.some((m) => findMount(m.target) !== undefined)) continue;
    // The server of the mount just unmounted may still be exiting.
    await waitForExit(pid, 2000);
    if (isRunning(pid)) continue;
    debug(`removing the metadata of ${r.Target}: its server ${pid} has ended`);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function waitForExit(pid: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!isRunning(pid)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Whether `pid` still runs. The detached server is reparented to init (or a subreaper) and is a
 * zombie from its exit until that process reaps it; kill(pid, 0) succeeds on a zombie, and a slow
 * reaper made every umount wait its full timeout.
 */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // "pid (comm) S ...": comm may hold spaces and parentheses, so take the state after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Is the namespace dir empty (the Go contract: meta/<mntns>/ stays, empty, after umount). */
export function isEmptyDir(dir: string): boolean {
  return existsSync(dir) && readdirSync(dir).length === 0;
}

