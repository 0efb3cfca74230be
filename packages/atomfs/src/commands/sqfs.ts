import { pipeline } from 'node:stream/promises';
import { CorruptImageError, deviceNumbers, extract, resolvePath, SquashFS, SuperblockFlag, walkTree, type ExtractSkip, type Inode, type WalkEntry } from '@atomfs/squashfs';
import { argBytes, parse, pathArg, rawArgs } from '../args.js';
import { listingRecord, notUtf8, type ListingRecord } from '../listing.js';
import { CommandError, UsageError } from '../errors.js';

export const SQFS_HELP = `Usage: atomfs sqfs <command> [options] IMAGE ...

Read a single squashfs image without mounting it.

Commands:
  ls [-l] [--json] [--offset N] IMAGE [PATH]   list PATH (default /) recursively
  cat [--offset N] IMAGE PATH                 write a file's content to stdout
  extract [--offset N] [--subdir P] IMAGE DIR extract the image into DIR (like unsquashfs -d);
                                              owners restored when run as root. An entry DIR's
                                              filesystem refuses (a name or symlink target too
                                              long for Linux, ...) is reported and skipped, the
                                              rest extracted; then the exit status is 3
                                              (unsquashfs: 2, atomfs's usage errors)
  info [--json] [--offset N] IMAGE            superblock, compressor, counts
  mount [options] IMAGE MOUNTPOINT            mount one image with the FUSE server (see 'atomfs sqfs mount --help')
  umount MOUNTPOINT                           unmount it

IMAGE may be a squashfs file, or a larger file with --offset N bytes before the image.
Paths may hold any bytes (they are used as given, not as UTF-8); ls prints names as raw bytes,
and --json adds "pathBase64"/"targetBase64" (the exact bytes) where a name is not UTF-8.`;

/**
 * Where the image opened last starts in its file (--offset): errors name file offsets, which a
 * hex dump of the file shows, rather than offsets into the image.
 */
let imageBase = 0;

function inFile(err: unknown): unknown {
  return err instanceof CorruptImageError ? err.inFileAt(imageBase) : err;
}

function open(image: string | undefined, offset: string | undefined): SquashFS {
  if (image === undefined) throw new UsageError('missing IMAGE');
  const off = offset === undefined ? 0 : Number(offset);
  if (!Number.isSafeInteger(off) || off < 0) throw new UsageError(`--offset must be a byte count, got "${offset}"`);
  imageBase = off;
  try {
    return SquashFS.open(pathArg(image), { offset: off });
  } catch (err) {
    throw new CommandError(`${image}: ${(inFile(err) as Error).message}`);
  }
}

const TYPE_CHARS: Record<Inode['kind'], string> = { dir: 'd', file: '-', symlink: 'l', block: 'b', char: 'c', fifo: 'p', socket: 's' };

function modeString(inode: Inode): string {
  const m = inode.mode;
  const rwx = (v: number, special: boolean, ch: string) =>
    (v & 4 ? 'r' : '-') + (v & 2 ? 'w' : '-') + (special ? (v & 1 ? ch : ch.toUpperCase()) : v & 1 ? 'x' : '-');
  return (
    TYPE_CHARS[inode.kind] +
    rwx((m >> 6) & 7, (m & 0o4000) !== 0, 's') +
    rwx((m >> 3) & 7, (m & 0o2000) !== 0, 's') +
    rwx(m & 7, (m & 0o1000) !== 0, 't')
  );
}

function entryJson(e: WalkEntry): ListingRecord {
  const i = e.inode;
  return listingRecord({
    path: e.pathBuffer,
    type: i.kind,
    mode: i.mode,
    uid: i.uid,
    gid: i.gid,
    size: e.stats.size,
    mtime: i.mtime,
    nlink: i.nlink,
    inode: i.inodeNumber,
    ...(i.kind === 'symlink' ? { target: i.target } : {}),
    ...(i.kind === 'block' || i.kind === 'char' ? { rdev: i.rdev } : {}),
  });
}

/** The line for one entry, as a string when its names are UTF-8, else as raw bytes. */
function entryLine(e: WalkEntry, long: boolean): string | Buffer {
  const link = e.inode.kind === 'symlink' ? e.inode.target : undefined;
  const raw = notUtf8(e.path, e.pathBuffer) || (long && link !== undefined && notUtf8(link.toString('utf8'), link));
  const text = long ? longLine(e) : e.path;
  if (!raw) return text + '\n';
  if (!long) return Buffer.concat([e.pathBuffer, NL]);
  const head = text.slice(0, text.length - e.path.length - (link !== undefined ? 4 + link.toString('utf8').length : 0));
  return Buffer.concat([Buffer.from(head), e.pathBuffer, ...(link !== undefined ? [ARROW, link] : []), NL]);
}

const NL = Buffer.from('\n');
const ARROW = Buffer.from(' -> ');

function longLine(e: WalkEntry): string {
  const i = e.inode;
  const size =
    i.kind === 'block' || i.kind === 'char' ? `${deviceNumbers(i.rdev).major},${deviceNumbers(i.rdev).minor}` : String(e.stats.size);
  const t = new Date(i.mtime * 1000).toISOString().replace('T', ' ').slice(0, 16);
  const link = i.kind === 'symlink' ? ` -> ${i.target.toString('utf8')}` : '';
  return `${modeString(i)} ${String(i.uid).padStart(5)}/${String(i.gid).padEnd(5)} ${size.padStart(12)} ${t} ${e.path}${link}`;
}

async function write(out: NodeJS.WritableStream, text: string | Buffer): Promise<void> {
  if (!out.write(text)) await new Promise((r) => out.once('drain', r));
}

export async function sqfsCommand(argv: string[], debug = false): Promise<number> {
  try {
    return await sqfsSubcommand(argv, debug);
  } catch (err) {
    throw inFile(err);
  }
}

async function sqfsSubcommand(argv: string[], debug: boolean): Promise<number> {
  const [cmd, ...given] = argv;
  // Paths of these commands may hold any bytes: the arguments as the kernel passed them.
  const rest = cmd === 'ls' || cmd === 'cat' || cmd === 'extract' || cmd === 'info' ? rawArgs(given) : given;
  switch (cmd) {
    case undefined:
      throw new UsageError('missing command (ls, cat, extract, info, mount or umount)');
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(SQFS_HELP + '\n');
      return 0;
    case 'ls': {
      const { values, positionals } = parse(rest, {
        long: { type: 'boolean', short: 'l' },
        json: { type: 'boolean' },
        offset: { type: 'string' },
      });
      if (positionals.length > 2) throw new UsageError('ls takes IMAGE [PATH]');
      const fs = open(positionals[0], values.offset);
      try {
        const startArg = positionals[1] ?? '/';
        const start = argBytes(startArg);
        guard(() => resolvePath(fs, start, false), startArg);
        if (values.json) {
          // One object a line (NDJSON), in 64 KiB writes, as `atomfs ls --json`.
          let chunk = '';
          for (const e of walkTree(fs, start)) {
            chunk += JSON.stringify(entryJson(e)) + '\n';
            if (chunk.length >= 65536) {
              await write(process.stdout, chunk);
              chunk = '';
            }
          }
          if (chunk !== '') await write(process.stdout, chunk);
        } else {
          // Lines are gathered into 64 KiB writes: one write per entry cost more than the walk.
          let chunk = '';
          for (const e of walkTree(fs, start)) {
            const line = entryLine(e, values.long === true);
            if (typeof line === 'string') chunk += line;
            else {
              // Raw bytes (a name that is not UTF-8): the text so far first, in order.
              if (chunk !== '') await write(process.stdout, chunk);
              chunk = '';
              await write(process.stdout, line);
            }
            if (chunk.length >= 65536) {
              await write(process.stdout, chunk);
              chunk = '';
            }
          }
          if (chunk !== '') await write(process.stdout, chunk);
        }
      } finally {
        fs.close();
      }
      return 0;
    }
    case 'cat': {
      const { values, positionals } = parse(rest, { offset: { type: 'string' } });
      if (positionals.length !== 2) throw new UsageError('cat takes IMAGE PATH');
      const fs = open(positionals[0], values.offset);
      try {
        const pathText = positionals[1]!;
        const path = argBytes(pathText);
        const inode = guard(() => resolvePath(fs, path, true), pathText);
        if (inode.kind !== 'file') throw new CommandError(`${pathText}: not a regular file (${inode.kind})`);
        await pipeline(fs.paths.createReadStream(path), process.stdout, { end: false });
      } finally {
        fs.close();
      }
      return 0;
    }
    case 'extract': {
      const { values, positionals } = parse(rest, { offset: { type: 'string' }, subdir: { type: 'string' } });
      if (positionals.length !== 2) throw new UsageError('extract takes IMAGE DIR');
      const fs = open(positionals[0], values.offset);
      try {
        const r = await extract(fs, pathArg(positionals[1]!), {
          ...(values.subdir !== undefined ? { subdir: argBytes(values.subdir) } : {}),
          onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
          // As unsquashfs: report each entry as it is skipped, carry on, fail at the end.
          onSkip: (s) => process.stderr.write(Buffer.concat([Buffer.from('warning: skipped '), describeSkip(s), NL])),
          // On a terminal, a progress line as unsquashfs shows one (entries against the image's inodes).
          ...(process.stderr.isTTY ? { onProgress: (n: number, total: number) => process.stderr.write(`\r${progressLine(n, total)}\x1b[K`) } : {}),
        });
        if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
        process.stderr.write(`extracted ${r.files} files, ${r.dirs} directories, ${r.symlinks} symlinks, ${r.hardlinks} hard links, ${r.specials} special files (${r.bytes} bytes)\n`);
        if (r.skipped.length > 0) {
          const list = r.skipped.map((s) => describeSkip(s));
          const parts = list.flatMap((d, i) => (i === 0 ? [d] : [Buffer.from('; '), d]));
          process.stderr.write(Buffer.concat([Buffer.from(`Error: ${r.skipped.length} ${r.skipped.length === 1 ? 'entry' : 'entries'} not extracted: `), ...parts, NL]));
          return PARTIAL_EXTRACTION;
        }
      } finally {
        fs.close();
      }
      return 0;
    }
    case 'info': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' }, offset: { type: 'string' } });
      if (positionals.length !== 1) throw new UsageError('info takes IMAGE');
      const fs = open(positionals[0], values.offset);
      try {
        const sb = fs.superblock;
        const flags = Object.entries(SuperblockFlag as unknown as Record<string, number>)
          .filter(([k, v]) => typeof v === 'number' && isNaN(Number(k)) && (sb.flags & v) !== 0)
          .map(([k]) => k);
        const info = {
          compressor: fs.compressor,
          compressionOptions: fs.compressionOptions?.toString('hex') ?? null,
          blockSize: sb.blockSize,
          bytesUsed: sb.bytesUsed,
          inodes: sb.inodeCount,
          fragments: sb.fragmentCount,
          ids: sb.idCount,
          mkfsTime: new Date(sb.mkfsTime * 1000).toISOString(),
          flags,
          exportTable: sb.exportTableStart !== undefined,
          xattrs: sb.xattrIdTableStart !== undefined,
          tables: {
            inode: sb.inodeTableStart,
            directory: sb.directoryTableStart,
            fragment: sb.fragmentTableStart ?? null,
            export: sb.exportTableStart ?? null,
            id: sb.idTableStart,
            xattrId: sb.xattrIdTableStart ?? null,
          },
        };
        if (values.json) process.stdout.write(JSON.stringify(info, null, 1) + '\n');
        else {
          for (const [k, v] of Object.entries(info)) {
            process.stdout.write(`${k.padEnd(20)} ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}\n`);
          }
        }
      } finally {
        fs.close();
      }
      return 0;
    }
    case 'mount':
      // Loaded here: listing and extracting need no FUSE code.
      return (await import('./sqfs-mount.js')).sqfsMount(given, debug);
    case 'umount':
    case 'unmount':
      return (await import('./sqfs-mount.js')).sqfsUmount(given);
    default:
      throw new UsageError(`unknown sqfs command "${cmd}"`);
  }
}

/**
 * Exit status of an extraction that skipped entries. unsquashfs says 2, which atomfs gives usage
 * errors: a script must be able to tell "wrong flags" from "mostly extracted".
 */
const PARTIAL_EXTRACTION = 3;

/** "/a/l (symlink): ENAMETOOLONG" with the image path's own bytes; a lost directory's contents went with it. */
function describeSkip(s: ExtractSkip): Buffer {
  const what = s.kind === 'dir' ? 'directory and its contents' : s.kind;
  return Buffer.concat([s.path, Buffer.from(` (${what}): ${s.error.code ?? s.error.message}`)]);
}

/** Turn a path-resolution failure into a one-line message naming the path. */
function guard<T>(fn: () => T, path: string): T {
  try {
    return fn();
  } catch (err) {
    throw new CommandError(`${path}: ${(inFile(err) as Error).message}`);
  }
}

/** "[=====     ] 1234/5678  21%" (hard links make the walk longer than the inode count: capped). */
function progressLine(done: number, total: number): string {
  const frac = Math.min(1, done / Math.max(1, total));
  const width = 40;
  const bar = '='.repeat(Math.round(frac * width)).padEnd(width);
  return `[${bar}] ${Math.min(done, total)}/${total} ${Math.round(frac * 100).toString().padStart(3)}%`;
}
