import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { findMount, readMountinfo, type MountInfo } from '@atomfs/fuse';
import { closeDmLayerIfUnused } from './dm-verity.js';
import type { MountRecord, MountStep } from './metadir.js';

/** The filesystem types each kind of step leaves at its target. */
const FSTYPES: Record<MountStep['kind'], readonly string[]> = { layer: ['squashfs', 'erofs'], fuse: ['fuse.atomfs'], overlay: ['overlay'] };

export function run(argv: string[]): { ok: boolean; err: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  // The last line, minus util-linux's "dmesg(1) may have more information ..." hint, which
  // would otherwise replace the actual reason ("wrong fs type, bad option, bad superblock ...").
  const lines = (r.error?.message ?? r.stderr ?? '').split('\n').map((l) => l.trim());
  const err = lines.filter((l) => l !== '' && !/^dmesg\(1\) may have more information/.test(l)).pop() ?? '';
  return { ok: r.status === 0, err };
}

export function mountSources(): string[] {
  return readMountinfo().map((m) => m.source);
}

/**
 * Unmount recorded mounts in reverse order; dead FUSE mounts lazily. Stops at the first mount
 * that cannot go (a busy overlay): what lies below a live mount stays, so a failed umount
 * changes nothing a user of the mount could see. A step is undone only where it can be ours:
 * at the record's target or inside its metadir, and of the filesystem type it made.
 */
export function undoMounts(steps: readonly MountStep[], allowed: (target: string) => boolean, debug: (m: string) => void): string[] {
  for (const s of [...steps].reverse()) {
    const m = findMount(s.target);
    if (m === undefined) continue;
    if (!allowed(s.target)) return [`refusing to unmount ${s.target}: the record puts it outside its target and metadir`];
    if (!FSTYPES[s.kind].includes(m.fstype)) {
      if (s.pending) continue; // never made: what is there is someone else's
      return [`refusing to unmount ${s.target}: it holds ${m.fstype}, not the ${FSTYPES[s.kind].join(' or ')} atomfs made`];
    }
    let r = run(['umount', s.target]);
    if (!r.ok && isDead(s.target)) r = run(['umount', '-l', s.target]);
    // Gone meanwhile (a server told to stop unmounts its own mount): done all the same.
    if (!r.ok && findMount(s.target)?.fstype !== m.fstype) r = { ok: true, err: '' };
    if (!r.ok) return [`unmounting ${s.target}: ${r.err}; nothing further was unmounted`];
    debug(`unmounted ${s.target}`);
  }
  // Shared dm-verity devices go when no mount (of any image) uses them any more.
  const errors: string[] = [];
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

/** The steps of a record, allowed where the record itself may act. */
export function undoRecord(metadir: string, record: MountRecord, debug: (m: string) => void): string[] {
  const allowed = (t: string) => t === record.Target || t.startsWith(join(metadir, 'mounts') + '/');
  const errors = undoMounts(record.atomfs.mounts, allowed, debug);
  if (errors.length > 0) return errors;
  const pid = record.atomfs.serverPid;
  // A server started by an interrupted mount may not have mounted yet, or mounted where the
  // record did not learn of it: it must not live on (and mount later). What it mounted before it
  // went is undone by a second pass.
  if (pid === undefined) return [];
  if (isOurServer(pid, metadir)) stopServer(pid, debug);
  return undoMounts(record.atomfs.mounts, allowed, debug);
}

/** Whether `pid` is the `atomfs __serve` of this metadir (pids are reused). */
export function isOurServer(pid: number, metadir: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes('__serve') && argv.includes(join(metadir, 'serve.json')) && isRunning(pid);
  } catch {
    return false;
  }
}

/** A server whose mount is gone exits by itself; one that does not (it never mounted) is stopped. */
function stopServer(pid: number, debug: (m: string) => void): void {
  if (waitSync(pid, 2000)) return;
  debug(`stopping server ${pid}`);
  signal(pid, 'SIGTERM');
  if (!waitSync(pid, 3000)) signal(pid, 'SIGKILL');
}

function waitSync(pid: number, ms: number): boolean {
  const end = Date.now() + ms;
  while (Date.now() < end && isRunning(pid)) spawnSync('sleep', ['0.02']);
  return !isRunning(pid);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
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

/**
 * Whether `pid` still runs. The detached server is reparented to init (or a subreaper) and is a
 * zombie from its exit until that process reaps it; kill(pid, 0) succeeds on a zombie, and a slow
 * reaper made every umount wait its full timeout.
 */
export function isRunning(pid: number): boolean {
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

export async function waitForExit(pid: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!isRunning(pid)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * overlayfs's lowerdir list from a mountinfo line: octal escapes as in all of mountinfo, then
 * overlayfs's own (a backslash quotes the next character, ":" separates the dirs).
 */
function lowerDirs(m: MountInfo): string[] {
  const opt = m.superOptions.split(',').find((o) => o.startsWith('lowerdir='));
  if (opt === undefined) return [];
  const value = opt.slice('lowerdir='.length).replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const dirs: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && i + 1 < value.length) cur += value[++i];
    else if (c === ':') {
      dirs.push(cur);
      cur = '';
    } else cur += c;
  }
  dirs.push(cur);
  return dirs;
}

/**
 * The steps of an atomfs mount at `target` whose record is gone (its metadir deleted while it
 * was live), read from the mount table: the FUSE mount itself, or an overlay at the target with
 * the atomfs FUSE mount or kernel layer mounts among its lower dirs below `nsDir`.
 */
export function stepsFromMountTable(target: string, nsDir: string): MountStep[] | undefined {
  const mounts = readMountinfo();
  const top = findMount(target, mounts);
  if (top?.fstype === 'fuse.atomfs') return [{ target, kind: 'fuse' }];
  if (top?.fstype !== 'overlay') return undefined;
  const ours: MountStep[] = [];
  for (const dir of lowerDirs(top)) {
    const path = dir.replace(/\/\/deleted$/, '');
    if (!path.startsWith(nsDir + '/')) continue;
    const m = findMount(path, mounts);
    if (m?.fstype === 'fuse.atomfs') ours.push({ target: path, kind: 'fuse' });
    else if (m !== undefined && FSTYPES.layer.includes(m.fstype)) {
      const dm = /^\/dev\/mapper\/([0-9a-f]+)-verity$/.exec(m.source)?.[1];
      ours.push({ target: path, kind: 'layer', ...(dm !== undefined ? { dm } : {}) });
    }
  }
  if (ours.length === 0) return undefined;
  return [...ours.reverse(), { target, kind: 'overlay' }];
}
