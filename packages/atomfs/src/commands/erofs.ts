import { resolve } from 'node:path';
import type { ErofsFsOptions } from '../layers/erofs-fs.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Erofs, extract, FileSource, resolvePath, walkTree, type ErofsInode, type WalkEntry } from '@atomfs/erofs';
import { argBytes, parse, pathArg, rawArgs } from '../args.js';
import { deviceNumbers } from '@atomfs/squashfs';
import { listingRecord, notUtf8, type ListingRecord } from '../listing.js';
import { CommandError, UsageError } from '../errors.js';

export const EROFS_HELP = `Usage: atomfs erofs <command> [options] IMAGE ...

Read a single erofs image (as mkfs.erofs makes it; stacker's erofs layers) without mounting it.

Commands:
  ls [-l] [--json] IMAGE [PATH]    list PATH (default /) recursively
  cat IMAGE PATH                   write a file's content to stdout
  extract [--subdir P] IMAGE DIR   extract the image into DIR (like fsck.erofs --extract=DIR, with
                                   xattrs; owners restored when run as root)
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

const TYPE_CHARS: Record<ErofsInode['kind'], string> = { dir: 'd', file: '-', symlink: 'l', block: 'b', char: 'c', fifo: 'p', socket: 's' };

function modeString(inode: ErofsInode): string {
  const m = inode.mode;
  const rwx = (v: number, special: boolean, ch: string) =>
    (v & 4 ? 'r' : '-') + (v & 2 ? 'w' : '-') + (special ? (v & 1 ? ch : ch.toUpperCase()) : v & 1 ? 'x' : '-');
  return TYPE_CHARS[inode.kind] + rwx((m >> 6) & 7, (m & 0o4000) !== 0, 's') + rwx((m >> 3) & 7, (m & 0o2000) !== 0, 's') + rwx(m & 7, (m & 0o1000) !== 0, 't');
}

function entryJson(fs: Erofs, e: WalkEntry): ListingRecord {
  const i = e.inode;
  const a = fs.attr(i);
  return listingRecord({
    path: e.path,
    type: i.kind,
    mode: a.mode,
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    mtime: a.mtime,
    nlink: a.nlink,
    inode: a.ino,
    ...(i.kind === 'symlink' ? { target: fs.readlink(i) } : {}),
    ...(i.kind === 'block' || i.kind === 'char' ? { rdev: a.rdev } : {}),
  });
}

const NL = Buffer.from('\n');

/** The line for one entry, as a string when its names are UTF-8, else as raw bytes. */
function entryLine(fs: Erofs, e: WalkEntry, long: boolean): string | Buffer {
  const i = e.inode;
  const path = e.path.toString('utf8');
  const link = i.kind === 'symlink' ? fs.readlink(i) : undefined;
  let head = '';
  if (long) {
    const a = fs.attr(i);
    const dev = deviceNumbers(a.rdev);
    const size = i.kind === 'block' || i.kind === 'char' ? `${dev.major},${dev.minor}` : String(a.size);
    const t = new Date(a.mtime * 1000).toISOString().replace('T', ' ').slice(0, 16);
    head = `${modeString(i)} ${String(a.uid).padStart(5)}/${String(a.gid).padEnd(5)} ${size.padStart(12)} ${t} `;
  }
  const tail = long && link !== undefined ? [Buffer.from(' -> '), link] : [];
  const raw = notUtf8(path, e.path) || (tail.length > 0 && notUtf8(link!.toString('utf8'), link!));
  if (!raw) return head + path + (tail.length > 0 ? ` -> ${link!.toString('utf8')}` : '') + '\n';
  return Buffer.concat([Buffer.from(head), e.path, ...tail, NL]);
}

async function write(out: NodeJS.WritableStream, data: string | Buffer): Promise<void> {
  if (!out.write(data)) await new Promise((r) => out.once('drain', r));
}

/** Turn a path-resolution (or image) failure into a one-line message naming the path. */
function guard<T>(fn: () => T, path: string): T {
  try {
    return fn();
  } catch (err) {
    throw new CommandError(`${path}: ${(err as Error).message}`);
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
        const startArg = positionals[1] ?? '/';
        const start = argBytes(startArg);
        guard(() => resolvePath(fs, start, false), startArg);
        // Lines are gathered into 64 KiB writes; raw-byte lines flush what came before them.
        let chunk = '';
        await guardAsync(async () => {
          for (const e of walkTree(fs, start)) {
            const line = values.json ? JSON.stringify(entryJson(fs, e)) + '\n' : entryLine(fs, e, values.long === true);
            if (typeof line === 'string') chunk += line;
            else {
              if (chunk !== '') await write(process.stdout, chunk);
              chunk = '';
              await write(process.stdout, line);
            }
            if (chunk.length >= 65536) {
              await write(process.stdout, chunk);
              chunk = '';
            }
          }
        }, positionals[0]!);
        if (chunk !== '') await write(process.stdout, chunk);
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
        const pathText = positionals[1]!;
        const inode = guard(() => resolvePath(fs, argBytes(pathText), true), pathText);
        if (inode.kind !== 'file') throw new CommandError(`${pathText}: not a regular file (${inode.kind})`);
        const step = 1 << 20;
        for (let pos = 0; pos < inode.size; pos += step) await write(process.stdout, guard(() => fs.read(inode, pos, step), pathText));
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
        const r = await guardAsync(
          () =>
            extract(fs, pathArg(positionals[1]!), {
              ...(values.subdir !== undefined ? { subdir: argBytes(values.subdir) } : {}),
              onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
            }),
          positionals[0]!,
        );
        process.stderr.write(`extracted ${r.files} files, ${r.dirs} directories, ${r.symlinks} symlinks, ${r.hardlinks} hard links, ${r.specials} special files (${r.bytes} bytes)\n`);
      } finally {
        fs.close();
      }
      return 0;
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

async function guardAsync<T>(fn: () => Promise<T>, image: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CommandError || err instanceof UsageError) throw err;
    throw new CommandError(`${image}: ${(err as Error).message}`);
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
    if (values.subdir !== undefined) {
      const dir = guard(() => resolvePath(fs, argBytes(values.subdir!), true), `--subdir ${values.subdir}`);
      if (dir.kind !== 'dir') throw new CommandError(`--subdir ${values.subdir}: not a directory in the image`);
    }
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
      fs: { module: new URL('../layers/erofs-fs.js', import.meta.url).href, options },
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
