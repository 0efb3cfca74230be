import { CorruptImageError, extract, SquashFS, squashfsTree, SuperblockFlag, type Inode } from '@atomfs/squashfs';
import { parse, pathArg, rawArgs } from '../args.js';
import { CommandError, UsageError } from '../errors.js';
import { catImageFile, extractImage, listImage, type ImageFile } from './image-file.js';

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

/** The opened image as the shared single-image commands use it (errors name file offsets). */
function imageFile(fs: SquashFS): ImageFile<Inode> {
  return { tree: squashfsTree(fs), explain: inFile };
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
        await listImage(imageFile(fs), positionals[0]!, positionals[1] ?? '/', { json: values.json === true, long: values.long === true });
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
        await catImageFile(imageFile(fs), positionals[1]!);
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
        return await extractImage(imageFile(fs), positionals[0]!, (o) => extract(fs, pathArg(positionals[1]!), o), values.subdir);
      } finally {
        fs.close();
      }
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
