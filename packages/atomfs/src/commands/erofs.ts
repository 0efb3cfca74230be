import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Erofs, erofsTree, extract, FileSource } from '@atomfs/erofs';
import type { ErofsFsOptions } from '../fusefs/erofs-fs.js';
import { argBytes, parse, pathArg, rawArgs } from '../args.js';
import { CommandError, UsageError } from '../errors.js';
import { catImageFile, checkSubdir, extractImage, listImage } from './image-file.js';

export const EROFS_HELP = `Usage: atomfs erofs <command> [options] IMAGE ...

Read a single erofs image (as mkfs.erofs makes it; stacker's erofs layers) without mounting it.

Commands:
  ls [-l] [--json] IMAGE [PATH]    list PATH (default /) recursively
  cat IMAGE PATH                   write a file's content to stdout
  extract [--subdir P] IMAGE DIR   extract the image into DIR (like fsck.erofs --extract=DIR, with
                                   xattrs; owners restored when run as root). An entry DIR's
                                   filesystem refuses is reported and skipped, the rest
                                   extracted; then the exit status is 3
  info [--json] IMAGE              superblock, features, counts
  mount [options] IMAGE MOUNTPOINT mount one image with the FUSE server (see 'atomfs erofs mount --help')
  umount MOUNTPOINT                unmount it

Paths may hold any bytes (they are used as given, not as UTF-8); ls prints names as raw bytes,
and --json adds "pathBase64"/"targetBase64" (the exact bytes) where a name is not UTF-8.`;

export const EROFS_MOUNT_HELP = `Usage: atomfs erofs mount [options] IMAGE MOUNTPOINT

Mount one erofs image read-only with atomfs's own FUSE server (no kernel erofs, no root: works
as root or as uid 0 of a user namespace, e.g. under 'unshare -Umr').

Options:
  --subdir PATH       mount only this directory of the image
  --foreground        stay in the foreground until unmounted (default: return once the mount is
                      ready; the server keeps running detached and exits when the mount goes away)
  --log FILE          server log when detached (default: a file in $TMPDIR, removed on clean exit)
  --allow-other       let other users see the mount
  --debug             log every FUSE request

Unmount with 'atomfs erofs umount MOUNTPOINT' or 'umount MOUNTPOINT'.`;

function open(image: string | undefined): Erofs {
  if (image === undefined) throw new UsageError('missing IMAGE');
  try {
    return new Erofs(new FileSource(pathArg(image)));
  } catch (err) {
    throw new CommandError(`${image}: ${(err as Error).message}`);
  }
}

export async function erofsCommand(argv: string[], debug = false): Promise<number> {
  const [cmd, ...given] = argv;
  const rest = cmd === 'ls' || cmd === 'cat' || cmd === 'extract' || cmd === 'info' ? rawArgs(given) : given;
  switch (cmd) {
    case undefined:
      throw new UsageError('missing command (ls, cat, extract, info, mount or umount)');
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(EROFS_HELP + '\n');
      return 0;
    case 'ls': {
      const { values, positionals } = parse(rest, { long: { type: 'boolean', short: 'l' }, json: { type: 'boolean' } });
      if (positionals.length > 2) throw new UsageError('ls takes IMAGE [PATH]');
      const fs = open(positionals[0]);
      try {
        await listImage({ tree: erofsTree(fs) }, positionals[0]!, positionals[1] ?? '/', { json: values.json === true, long: values.long === true });
      } finally {
        fs.close();
      }
      return 0;
    }
    case 'cat': {
      const { positionals } = parse(rest, {});
      if (positionals.length !== 2) throw new UsageError('cat takes IMAGE PATH');
      const fs = open(positionals[0]);
      try {
        await catImageFile({ tree: erofsTree(fs) }, positionals[1]!);
      } finally {
        fs.close();
      }
      return 0;
    }
    case 'extract': {
      const { values, positionals } = parse(rest, { subdir: { type: 'string' } });
      if (positionals.length !== 2) throw new UsageError('extract takes IMAGE DIR');
      const fs = open(positionals[0]);
      try {
        return await extractImage({ tree: erofsTree(fs) }, positionals[0]!, (o) => extract(fs, pathArg(positionals[1]!), o), values.subdir);
      } finally {
        fs.close();
      }
    }
    case 'info': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' } });
      if (positionals.length !== 1) throw new UsageError('info takes IMAGE');
      const fs = open(positionals[0]);
      try {
        const sb = fs.superblock;
        const info = {
          blockSize: sb.blockSize,
          blocks: sb.blocks,
          imageBytes: sb.blocks * sb.blockSize,
          inodes: sb.inodeCount,
          rootNid: sb.rootNid,
          buildTime: new Date(sb.buildTime * 1000).toISOString(),
          uuid: sb.uuid.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-'),
          volumeName: sb.volumeName.subarray(0, sb.volumeName.indexOf(0) < 0 ? 16 : sb.volumeName.indexOf(0)).toString('utf8'),
          features: sb.features,
          compressionAlgorithms: ['lz4', 'lzma', 'deflate', 'zstd'].filter((_, i) => sb.featureIncompat & 0x2 ? sb.availableComprAlgs & (1 << i) : i === 0),
          metaBlockAddr: sb.metaBlockAddr,
          xattrBlockAddr: sb.xattrBlockAddr,
        };
        if (values.json) process.stdout.write(JSON.stringify(info, null, 1) + '\n');
        else for (const [k, v] of Object.entries(info)) process.stdout.write(`${k.padEnd(22)} ${Array.isArray(v) ? v.join(' ') : String(v)}\n`);
      } finally {
        fs.close();
      }
      return 0;
    }
    case 'mount':
      return erofsMount(given, debug);
    case 'umount':
    case 'unmount':
      // The same FUSE subtype as a squashfs image's mount: one unmount command serves both.
      return (await import('./sqfs-mount.js')).sqfsUmount(given);
    default:
      throw new UsageError(`unknown erofs command "${cmd}"`);
  }
}

async function erofsMount(argv: string[], globalDebug: boolean): Promise<number> {
  const { values, positionals } = parse(argv, {
    foreground: { type: 'boolean' },
    subdir: { type: 'string' },
    log: { type: 'string' },
    'allow-other': { type: 'boolean' },
    debug: { type: 'boolean' },
    'ready-fd': { type: 'string' },
    'remove-log': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(EROFS_MOUNT_HELP + '\n');
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError('erofs mount takes IMAGE MOUNTPOINT');
  const image = resolve(positionals[0]!);
  const debug = values.debug === true || globalDebug;
  // Check what a user can get wrong before starting a server, so errors come back here.
  const fs = open(image);
  try {
    if (values.subdir !== undefined) checkSubdir({ tree: erofsTree(fs) }, values.subdir, argBytes(values.subdir));
  } finally {
    fs.close();
  }
  const fuse = await import('@atomfs/fuse');
  let mountpoint: string;
  try {
    mountpoint = fuse.checkMountpoint(positionals[1]!);
    (await import('node:fs')).closeSync(fuse.openFuseDevice());
  } catch (err) {
    throw new CommandError((err as Error).message);
  }
  const { removeLog } = await import('./sqfs-mount.js');
  if (!values.foreground) {
    const explicitLog = values.log !== undefined;
    const logFile = explicitLog ? resolve(values.log!) : join(mkdtempSync(join(tmpdir(), 'atomfs-erofs-')), `${mountpoint.replace(/\//g, '_')}.log`);
    const childArgs = ['erofs', 'mount', '--foreground', image, mountpoint];
    if (values.subdir !== undefined) childArgs.push('--subdir', values.subdir);
    if (values['allow-other']) childArgs.push('--allow-other');
    if (debug) childArgs.push('--debug');
    if (!explicitLog) childArgs.push('--remove-log', logFile);
    const { startDetached } = await import('../daemon.js');
    await startDetached(childArgs, logFile);
    return 0;
  }
  const options: ErofsFsOptions = { image, ...(values.subdir !== undefined ? { subdir: values.subdir } : {}) };
  let server;
  try {
    server = await fuse.FuseServer.mount({
      mountpoint,
      fs: { module: new URL('../fusefs/erofs-fs.js', import.meta.url).href, options },
      allowOther: values['allow-other'] === true,
      subtype: 'atomfs',
      fsname: image,
      debug,
      unmountOnSignals: ['SIGTERM', 'SIGINT', 'SIGHUP'],
    });
  } catch (err) {
    if (err instanceof fuse.FuseError) throw new CommandError(err.message);
    throw err;
  }
  process.stderr.write(`atomfs: serving ${image} at ${mountpoint} (pid ${process.pid})\n`);
  (await import('../daemon.js')).signalReady(values['ready-fd'] === undefined ? undefined : Number(values['ready-fd']));
  const info = await server.closed;
  process.stderr.write(`atomfs: ${mountpoint} ${info.reason}: ${info.detail}\n`);
  if (info.reason !== 'unmounted') return 1;
  removeLog(values['remove-log']);
  return 0;
}
