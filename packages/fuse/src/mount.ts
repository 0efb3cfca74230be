/**
 * Mounting and unmounting through util-linux mount(8)/umount(8), mountpoint checks, and
 * dead-mount cleanup. Node cannot call mount(2) itself; mount(8) receives our /dev/fuse file
 * descriptor as its fd 3 and the kernel resolves "fd=3" in mount(8)'s own fd table.
 */
import { spawn } from 'node:child_process';
import { realpathSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { resolve } from 'node:path';
import { inUserNamespace } from './device.js';
import { MountCommandError, MountpointError } from './errors.js';
import { findMount } from './mountinfo.js';

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/**
 * Runs a command asynchronously. Never spawnSync umount/mount from a thread that serves the
 * mount: they may stat the mountpoint, and the answer would have to come from the blocked thread.
 */
export function runCommand(argv: string[], extraFds: number[] = []): Promise<CommandResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe', ...extraFds] });
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      if (stderr.length < 64 * 1024) stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code, signal, stderr: stderr.trim() }));
  });
}

/**
 * Checks that `mountpoint` can take a mount and returns its canonical absolute path.
 * Throws MountpointError: missing, not a directory, already a mountpoint, or a dead FUSE mount.
 */
export function checkMountpoint(mountpoint: string): string {
  const abs = resolve(mountpoint);
  let canonical: string;
  try {
    canonical = realpathSync(abs);
    const st = statSync(canonical);
    if (!st.isDirectory()) {
      throw new MountpointError(abs, 'not-directory', `mountpoint ${abs} is not a directory`);
    }
  } catch (err) {
    if (err instanceof MountpointError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new MountpointError(abs, 'missing', `mountpoint ${abs} does not exist: create it first (mkdir -p)`);
    if (code === 'ENOTDIR') throw new MountpointError(abs, 'not-directory', `mountpoint ${abs}: a path component is not a directory`);
    if (code === 'ENOTCONN' || code === 'ECONNABORTED') {
      throw new MountpointError(
        abs,
        'dead-mount',
        `mountpoint ${abs} is a dead FUSE mount (Transport endpoint is not connected): its server died; ` +
          `remove it with \`umount -l ${abs}\` (or cleanupDeadMount())`,
      );
    }
    throw new MountpointError(abs, 'inaccessible', `mountpoint ${abs} is not accessible: ${(err as Error).message}`);
  }
  const existing = findMount(canonical);
  if (existing && isDeadSync(canonical)) {
    throw new MountpointError(
      canonical,
      'dead-mount',
      `mountpoint ${canonical} is a dead FUSE mount (Transport endpoint is not connected): its server died; ` +
        `remove it with \`umount -l ${canonical}\` (or cleanupDeadMount())`,
    );
  }
  if (existing) {
    throw new MountpointError(
      canonical,
      'already-mounted',
      `${canonical} is already a mountpoint (${existing.fstype} from ${existing.source}); unmount it first or pick another directory`,
    );
  }
  return canonical;
}

export interface MountCommandOptions {
  /** Our /dev/fuse descriptor (becomes fd 3 of mount(8)). */
  fd: number;
  mountpoint: string;
  subtype: string;
  fsname: string;
  allowOther: boolean;
  /** Ignore setuid bits / device nodes (default true: only a host-root caller may want them honoured). */
  nosuid?: boolean;
  nodev?: boolean;
  /** Extra kernel/mount options, e.g. ["max_read=131072"]. */
  extraOptions?: string[];
}

export function mountArgv(o: MountCommandOptions): string[] {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const options = [
    'fd=3',
    'rootmode=40000',
    `user_id=${uid}`,
    `group_id=${gid}`,
    'ro',
    ...(o.nosuid === false ? [] : ['nosuid']),
    ...(o.nodev === false ? [] : ['nodev']),
    'default_permissions',
    ...(o.allowOther ? ['allow_other'] : []),
    ...(o.extraOptions ?? []),
  ];
  // -i: do not run /sbin/mount.fuse* helpers (fuse3 installs one that wants fusermount);
  // -n: do not write /etc/mtab or utab.
  return ['mount', '-i', '-n', '-t', `fuse.${o.subtype}`, '-o', options.join(','), o.fsname, o.mountpoint];
}

/** Throws RangeError for a subtype or fsname that mount(8) or the kernel would mangle. */
export function checkMountNames(subtype: string, fsname: string): void {
  if (!/^[A-Za-z0-9_.+-]+$/.test(subtype)) throw new RangeError(`subtype ${JSON.stringify(subtype)}: use letters, digits, _ . + -`);
  if (fsname.length === 0 || /[\s,]/.test(fsname)) throw new RangeError(`fsname ${JSON.stringify(fsname)}: must be non-empty, without spaces or commas`);
}

/** Mounts; resolves once mount(2) succeeded (INIT is answered afterwards by the session). */
export async function mountFuse(o: MountCommandOptions): Promise<void> {
  checkMountNames(o.subtype, o.fsname);
  const argv = mountArgv(o);
  let result: CommandResult;
  try {
    result = await runCommand(argv, [o.fd]);
  } catch (err) {
    throw new MountCommandError(argv, null, '', `cannot run mount(8): ${(err as Error).message} (install util-linux)`);
  }
  if (result.code !== 0) {
    const line = result.stderr.split('\n').find((l) => l.trim() !== '') ?? '(no message)';
    let hint = '';
    if ((process.getuid?.() ?? 0) !== 0 && !inUserNamespace()) {
      hint = '; a non-root user must mount inside a user namespace (e.g. `unshare -Umr <command>`)';
    }
    throw new MountCommandError(argv, result.code, result.stderr, `mount of ${o.mountpoint} failed (exit ${result.code ?? result.signal}): ${line}${hint}`);
  }
}

/**
 * Unmounts `mountpoint` with umount(8). Lazy (MNT_DETACH) by default, so a busy mount is
 * detached at once and the session ends when its last user goes away.
 */
export async function unmountFuse(mountpoint: string, options: { lazy?: boolean } = {}): Promise<void> {
  const argv = ['umount', ...(options.lazy === false ? [] : ['-l']), mountpoint];
  let result: CommandResult;
  try {
    result = await runCommand(argv);
  } catch (err) {
    throw new MountCommandError(argv, null, '', `cannot run umount(8): ${(err as Error).message}`);
  }
  if (result.code !== 0) {
    const line = result.stderr.split('\n').find((l) => l.trim() !== '') ?? '(no message)';
    throw new MountCommandError(argv, result.code, result.stderr, `umount of ${mountpoint} failed (exit ${result.code ?? result.signal}): ${line}`);
  }
}

function isDisconnected(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOTCONN' || code === 'ECONNABORTED';
}

// statfs, not stat: the kernel answers stat from its attribute cache even after the server
// died (our timeouts are long), while STATFS always goes to the server.
function isDeadSync(mountpoint: string): boolean {
  try {
    statfsSync(mountpoint);
    return false;
  } catch (err) {
    return isDisconnected(err);
  }
}

/** True when `mountpoint` is a FUSE mount whose server is gone ("Transport endpoint is not connected"). */
export async function isDeadMount(mountpoint: string): Promise<boolean> {
  try {
    await statfs(mountpoint);
    return false;
  } catch (err) {
    return isDisconnected(err);
  }
}

/** Removes a dead FUSE mount at `mountpoint` (lazy umount). Returns true if there was one. */
export async function cleanupDeadMount(mountpoint: string): Promise<boolean> {
  const abs = resolve(mountpoint);
  if (!(await isDeadMount(abs))) return false;
  await unmountFuse(abs, { lazy: true });
  return true;
}

/**
 * Sets the kernel readahead of a mount's backing device info (/sys/class/bdi/<dev>/read_ahead_kb).
 * FUSE mounts start at 128 KiB, so buffered reads arrive as 128 KiB READs; larger readahead
 * means fewer, larger requests. Only host root may write there: returns false otherwise.
 */
export function setReadAhead(mountpoint: string, kib: number): boolean {
  const m = findMount(mountpoint);
  if (!m) return false;
  try {
    writeFileSync(`/sys/class/bdi/${m.major}:${m.minor}/read_ahead_kb`, String(kib));
    return true;
  } catch {
    return false;
  }
}
