import { existsSync, mkdtempSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { checkMountpoint, FuseError, FuseServer, findMount, isDeadMount, openFuseDevice, unmountFuse, DEFAULT_READ_WORKERS } from '@atomfs/fuse';
import { SquashFS, squashfsTree } from '@atomfs/squashfs';
import { parse } from '../args.js';
import { signalReady, startDetached } from '../daemon.js';
import { CommandError, UsageError } from '../errors.js';
import type { SquashfsFsOptions } from '../fusefs/squashfs-fs.js';
import { checkSubdir } from './image-file.js';

export const SQFS_MOUNT_HELP = `Usage: atomfs sqfs mount [options] IMAGE MOUNTPOINT

Mount one squashfs image read-only with atomfs's own FUSE server (no kernel squashfs, no root:
works as root or as uid 0 of a user namespace, e.g. under 'unshare -Umr').

Options:
  --offset N          the image starts N bytes into IMAGE
  --subdir PATH       mount only this directory of the image
  --foreground        stay in the foreground until unmounted (default: return once the mount is
                      ready; the server keeps running detached and exits when the mount goes away)
  --log FILE          server log when detached (default: a file in $TMPDIR, removed on clean exit)
  --allow-other       let other users see the mount
  --read-workers N    threads decompressing file data (default ${DEFAULT_READ_WORKERS})
  --debug             log every FUSE request

Unmount with 'atomfs sqfs umount MOUNTPOINT' or 'umount MOUNTPOINT'.`;

const SUBTYPE = 'atomfs';

function mungedName(mp: string): string {
  return mp.replace(/\//g, '_');
}

export async function sqfsMount(argv: string[], globalDebug: boolean): Promise<number> {
  const { values, positionals } = parse(argv, {
    offset: { type: 'string' },
    subdir: { type: 'string' },
    foreground: { type: 'boolean' },
    log: { type: 'string' },
    'allow-other': { type: 'boolean' },
    'read-workers': { type: 'string' },
    debug: { type: 'boolean' },
    'ready-fd': { type: 'string' },
    'remove-log': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(SQFS_MOUNT_HELP + '\n');
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError('sqfs mount takes IMAGE MOUNTPOINT');
  const image = resolve(positionals[0]!);
  const offset = values.offset === undefined ? 0 : Number(values.offset);
  if (!Number.isSafeInteger(offset) || offset < 0) throw new UsageError(`--offset must be a byte count, got "${values.offset}"`);
  const workers = values['read-workers'] === undefined ? DEFAULT_READ_WORKERS : Number(values['read-workers']);
  if (!Number.isInteger(workers) || workers < 0 || workers > 64) throw new UsageError('--read-workers must be 0..64');
  const debug = values.debug === true || globalDebug;

  // Check everything a user can get wrong before forking a server, so errors come back here.
  let fs: SquashFS;
  try {
    fs = SquashFS.open(image, { offset });
  } catch (err) {
    throw new CommandError(`${image}: ${(err as Error).message}`);
  }
  try {
    if (values.subdir !== undefined) checkSubdir({ tree: squashfsTree(fs) }, values.subdir);
  } finally {
    fs.close();
  }
  let mountpoint: string;
  try {
    mountpoint = checkMountpoint(positionals[1]!);
    const fd = openFuseDevice();
    (await import('node:fs')).closeSync(fd);
  } catch (err) {
    throw new CommandError((err as Error).message);
  }

  if (!values.foreground) {
    const explicitLog = values.log !== undefined;
    // A fresh private directory: uid 0 of a user namespace must not collide with host root's files.
    const logFile = explicitLog ? resolve(values.log!) : join(mkdtempSync(join(tmpdir(), 'atomfs-sqfs-')), `${mungedName(mountpoint)}.log`);
    const childArgs = ['sqfs', 'mount', '--foreground', image, mountpoint, '--offset', String(offset), '--read-workers', String(workers)];
    if (values.subdir !== undefined) childArgs.push('--subdir', values.subdir);
    if (values['allow-other']) childArgs.push('--allow-other');
    if (debug) childArgs.push('--debug');
    // The default log is only worth keeping when something went wrong.
    if (!explicitLog) childArgs.push('--remove-log', logFile);
    try {
      await startDetached(childArgs, logFile);
    } catch (err) {
      // A server that never got to say anything (it could not even start) leaves no empty log behind.
      if (!explicitLog && existsSync(logFile) && statSync(logFile).size === 0) removeLog(logFile);
      throw err;
    }
    return 0;
  }

  const fsOptions: SquashfsFsOptions = { image, offset, ...(values.subdir !== undefined ? { subdir: values.subdir } : {}) };
  let server: FuseServer;
  try {
    server = await FuseServer.mount({
      mountpoint,
      fs: { module: new URL('../fusefs/squashfs-fs.js', import.meta.url).href, options: fsOptions },
      readWorkers: workers,
      allowOther: values['allow-other'] === true,
      subtype: SUBTYPE,
      fsname: image,
      debug,
      unmountOnSignals: ['SIGTERM', 'SIGINT', 'SIGHUP'],
    });
  } catch (err) {
    if (err instanceof FuseError) throw new CommandError(err.message);
    throw err;
  }
  process.stderr.write(`atomfs: serving ${image} at ${mountpoint} (pid ${process.pid})\n`);
  signalReady(values['ready-fd'] === undefined ? undefined : Number(values['ready-fd']));
  const info = await server.closed;
  process.stderr.write(`atomfs: ${mountpoint} ${info.reason}: ${info.detail}\n`);
  if (info.reason !== 'unmounted') return 1;
  removeLog(values['remove-log']);
  return 0;
}

export const SQFS_UMOUNT_HELP = `Usage: atomfs sqfs umount [--lazy] MOUNTPOINT

Unmount a mount made by 'atomfs sqfs mount'; its server then exits. A mount whose server died
("Transport endpoint is not connected") is removed too. --lazy detaches a busy mount.`;

export async function sqfsUmount(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { lazy: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    process.stdout.write(SQFS_UMOUNT_HELP + '\n');
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('sqfs umount takes MOUNTPOINT');
  // No realpath: a dead FUSE mount cannot be stat'ed.
  const mp = resolve(positionals[0]!);
  const m = findMount(mp);
  if (m === undefined) throw new CommandError(`${mp} is not a mountpoint`);
  if (m.fstype !== `fuse.${SUBTYPE}`) throw new CommandError(`${mp} is not an atomfs mount (it is ${m.fstype})`);
  const dead = await isDeadMount(mp);
  try {
    await unmountFuse(mp, { lazy: dead || values.lazy === true });
  } catch (err) {
    throw new CommandError((err as Error).message);
  }
  return 0;
}

/** Remove the default log of a detached server that ended cleanly. */
export function removeLog(file: string | undefined): void {
  if (file === undefined || !existsSync(file)) return;
  rmSync(file, { force: true });
  try {
    rmdirSync(dirname(file));
  } catch {
    // Not empty or already gone: leave it.
  }
}
