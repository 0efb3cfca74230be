import { closeSync, fstatSync, ftruncateSync, openSync, readSync, statSync } from 'node:fs';
import { parseSuperblock as parseSquashfsSuperblock, SquashfsError, SUPERBLOCK_SIZE as SQUASHFS_SUPERBLOCK_SIZE } from '@atomfs/squashfs';
import {
  FileByteSource,
  formatUuid,
  formatVerity,
  hashOffsetFor,
  readSuperblock,
  VERITY_SIGNATURE,
  VerityError,
  type TreeGeometry,
  type VeritySuperblock,
} from '@atomfs/verity';
import { parse } from '../args.js';
import { CommandError, UsageError } from '../errors.js';

export const VERITY_CMD_HELP = `Usage: atomfs verity <command> [options] IMAGE

dm-verity data of a squashfs layer file, in the layout stacker writes: the superblock at the
squashfs size rounded up to 4096 (H), the hash tree after it, covering [0, H) in 4096-byte blocks.

Commands:
  format [--salt HEX|-] [--uuid UUID] [--force] [--json] IMAGE
         append dm-verity data to IMAGE, byte for byte what
         'veritysetup format IMAGE IMAGE --hash-offset=H --data-blocks=H/4096' writes (the image is
         first padded with zeros to H); prints the root hash for the layer annotation.
         --salt: hex (default 32 random bytes; '-' = no salt); --uuid: default random;
         --force: replace whatever follows the squashfs image (e.g. old verity data)
  dump [--json] IMAGE
         print the verity superblock of IMAGE (like 'veritysetup dump IMAGE --hash-offset=H')`;

/** Where the squashfs image in `path` ends and its verity data would start. */
interface ImageLayout {
  fileSize: number;
  bytesUsed: number;
  hashOffset: number;
}

function readLayout(path: string): ImageLayout {
  let fd: number;
  try {
    if (!statSync(path).isFile()) throw new CommandError(`${path} is not a regular file`);
    fd = openSync(path, 'r');
  } catch (err) {
    if (err instanceof CommandError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new CommandError(e.code === 'ENOENT' ? `${path}: no such file` : `${path}: ${e.message}`);
  }
  try {
    const fileSize = fstatSync(fd).size;
    const head = Buffer.alloc(SQUASHFS_SUPERBLOCK_SIZE);
    const n = readSync(fd, head, 0, head.length, 0);
    if (n < head.length) throw new CommandError(`${path} is not a squashfs image: only ${fileSize} bytes`);
    let bytesUsed: number;
    try {
      bytesUsed = parseSquashfsSuperblock(head, fileSize).bytesUsed;
    } catch (err) {
      if (err instanceof SquashfsError) throw new CommandError(`${path} is not a usable squashfs image: ${err.message}`);
      throw err;
    }
    return { fileSize, bytesUsed, hashOffset: hashOffsetFor(bytesUsed) };
  } finally {
    closeSync(fd);
  }
}

function hasVeritySignature(path: string, offset: number): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(VERITY_SIGNATURE.length);
    return readSync(fd, b, 0, b.length, offset) === b.length && b.equals(VERITY_SIGNATURE);
  } finally {
    closeSync(fd);
  }
}

/** Hash blocks of the tree (all levels, superblock block excluded), as veritysetup counts them. */
function hashBlocks(g: TreeGeometry): number {
  return g.levelSize.reduce((a, b) => a + b, 0);
}

interface Report {
  image: string;
  uuid: string;
  hashType: number;
  dataBlocks: number;
  dataBlockSize: number;
  hashBlocks: number;
  hashBlockSize: number;
  algorithm: string;
  salt: string;
  hashOffset: number;
  rootHash?: string;
}

function report(image: string, sb: VeritySuperblock, g: TreeGeometry, hashOffset: number, rootHash?: string): Report {
  return {
    image,
    uuid: formatUuid(sb.uuid),
    hashType: sb.hashType,
    dataBlocks: sb.dataBlocks,
    dataBlockSize: sb.dataBlockSize,
    hashBlocks: hashBlocks(g),
    hashBlockSize: sb.hashBlockSize,
    algorithm: sb.algorithm,
    salt: sb.salt.length === 0 ? '-' : sb.salt.toString('hex'),
    hashOffset,
    ...(rootHash !== undefined ? { rootHash } : {}),
  };
}

/** The text veritysetup prints (same labels, tab after the padded label), plus the hash offset. */
function printReport(r: Report, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(r) + '\n');
    return;
  }
  const lines: [string, string | number][] = [
    ['UUID:', r.uuid],
    ['Hash type:', r.hashType],
    ['Data blocks:', r.dataBlocks],
    ['Data block size:', r.dataBlockSize],
    ['Hash blocks:', r.hashBlocks],
    ['Hash block size:', r.hashBlockSize],
    ['Hash algorithm:', r.algorithm],
    ['Salt:', r.salt],
    ['Hash offset:', r.hashOffset],
  ];
  let out = `VERITY header information for ${r.image}\n`;
  for (const [k, v] of lines) out += `${k.padEnd(17)}\t${v}\n`;
  // veritysetup pads this label one column less; kept so scripts parsing its output work here too.
  if (r.rootHash !== undefined) out += `${'Root hash:'.padEnd(16)}\t${r.rootHash}\n`;
  process.stdout.write(out);
}

async function formatCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    salt: { type: 'string' },
    uuid: { type: 'string' },
    force: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (positionals.length !== 1) throw new UsageError('format takes one IMAGE');
  const image = positionals[0]!;
  let salt: string | undefined = values.salt;
  if (salt === '-') salt = '';
  else if (salt !== undefined && (!/^([0-9a-fA-F]{2})+$/.test(salt) || salt.length > 512)) {
    throw new CommandError(`--salt must be hex of 1 to 256 bytes (or '-' for none), got "${salt}"`);
  }
  const uuid = values.uuid;
  if (uuid !== undefined && !/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(uuid)) {
    throw new CommandError(`--uuid must look like 01234567-89ab-cdef-0123-456789abcdef, got "${uuid}"`);
  }
  const layout = readLayout(image);
  const H = layout.hashOffset;
  if (layout.fileSize > H && !values.force) {
    if (hasVeritySignature(image, H)) {
      throw new CommandError(`${image} already has dm-verity data (superblock at ${H}); use --force to replace it`);
    }
    throw new CommandError(`${image} has ${layout.fileSize - H} bytes after its squashfs image (ends at ${H}) that are not dm-verity data; use --force to replace them`);
  }
  // Pad to H (a -nopad image) or cut what --force replaces: veritysetup then sees the same file.
  if (layout.fileSize !== H) {
    const fd = openSync(image, 'r+');
    try {
      ftruncateSync(fd, H);
    } finally {
      closeSync(fd);
    }
  }
  let result;
  try {
    result = await formatVerity(image, {
      hashOffset: H,
      dataBlocks: H / 4096,
      ...(salt !== undefined ? { salt } : {}),
      ...(uuid !== undefined ? { uuid } : {}),
    });
  } catch (err) {
    if (err instanceof VerityError) throw new CommandError(err.message);
    throw err;
  }
  printReport(report(image, result.superblock, result.geometry, H, result.rootHash), values.json === true);
  return 0;
}

function dumpCommand(argv: string[]): number {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  if (positionals.length !== 1) throw new UsageError('dump takes one IMAGE');
  const image = positionals[0]!;
  const layout = readLayout(image);
  const file = new FileByteSource(image, { label: image });
  try {
    const { superblock, geometry } = readSuperblock(file, layout.hashOffset, image);
    printReport(report(image, superblock, geometry, layout.hashOffset), values.json === true);
  } catch (err) {
    if (err instanceof VerityError) throw new CommandError(err.message);
    throw err;
  } finally {
    file.close();
  }
  return 0;
}

/** `atomfs verity format|dump ...`. Usage errors print this command's help, not the global one. */
export async function verityCommand(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'format':
        return await formatCommand(rest);
      case 'dump':
        return dumpCommand(rest);
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(VERITY_CMD_HELP + '\n');
        return 0;
      case undefined:
        throw new UsageError('missing command (format or dump)');
      default:
        throw new UsageError(`unknown verity command "${cmd}"`);
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`Incorrect Usage: ${err.message}\n${VERITY_CMD_HELP}\n`);
    return 2;
  }
}
