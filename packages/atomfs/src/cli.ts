import { CommandError, UsageError } from './errors.js';

// Command modules are imported when their command runs: loading every package (FUSE, overlay,
// OCI, verity, the decoders) up front slowed every invocation, which a short `atomfs verify`
// or `atomfs sqfs cat` paid in full.
const image = () => import('./commands/image.js');
const sqfs = () => import('./commands/sqfs.js');
const erofs = () => import('./commands/erofs.js');
const verity = () => import('./commands/verity.js');
const verify = () => import('./commands/verify.js');

/** The help of `cmd` (and its subcommand `sub`, where it has its own). */
async function helpFor(cmd: string | undefined, sub?: string): Promise<string> {
  switch (cmd) {
    case 'sqfs': {
      if (sub === 'mount' || sub === 'umount') {
        const m = await import('./commands/sqfs-mount.js');
        return sub === 'mount' ? m.SQFS_MOUNT_HELP : m.SQFS_UMOUNT_HELP;
      }
      return (await sqfs()).SQFS_HELP;
    }
    case 'erofs':
      return sub === 'mount' ? (await erofs()).EROFS_MOUNT_HELP : (await erofs()).EROFS_HELP;
    case 'mount':
      return (await image()).MOUNT_HELP;
    case 'umount':
    case 'unmount':
      return (await image()).UMOUNT_HELP;
    case 'verify':
      return (await verify()).VERIFY_HELP;
    case 'list':
      return (await image()).LIST_HELP;
    case 'ls':
    case 'cat':
      return (await image()).IMAGE_READ_HELP;
    case 'verity':
      return (await verity()).VERITY_CMD_HELP;
    case 'pull':
      return (await import('./commands/pull.js')).PULL_HELP;
    default:
      return HELP;
  }
}

const COMMANDS = new Set(['mount', 'umount', 'unmount', 'list', 'verify', 'ls', 'cat', 'sqfs', 'erofs', 'verity', 'pull']);

/** `-h`/`--help` among a command's arguments (before a `--`): its help is wanted, whatever else is there. */
function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === '-h' || a === '--help' || a === '-help');
}

export const HELP = `Usage: atomfs [--debug] <command> [options] ...

Mount and read OCI images made of squashfs layers with dm-verity data (as stacker builds them).

Commands:
  mount    mount an OCI image: atomfs mount [--writeable | --upper DIR | --persist DIR]
           [--allow-missing-verity] [--nosuid] [--nodev] [--metadir DIR]
           [--backend auto|kernel|fuse] OCIDIR:TAG TARGET
  umount   unmount it: atomfs umount [--metadir DIR] TARGET
  list     the image mounts of this mount namespace: atomfs list [--json] [--metadir DIR]
  verify   check every block of every layer against dm-verity: atomfs verify TARGET|OCIDIR:TAG
  ls       list the merged image without mounting: atomfs ls OCIDIR:TAG [PATH]
  cat      print a file of the merged image: atomfs cat OCIDIR:TAG PATH
  pull     fetch a registry image into the blob cache: atomfs pull docker://HOST/REPO:TAG
  sqfs     read or mount a single squashfs image (ls, cat, extract, info, mount, umount)
  erofs    read or mount a single erofs image (ls, cat, extract, info, mount, umount)
  verity   append dm-verity data to a squashfs layer file (format), or show it (dump)
  help     show this help, or a command's: atomfs help COMMAND [SUBCOMMAND]

'atomfs <command> --help' (or 'atomfs help <command>') tells more. Usage errors exit 2,
other failures 1; every error is one line on stderr starting with "Error: " or "Incorrect Usage: ".

Global options:
  --debug        more output on stderr
  -h, --help     show help
  -v, --version  show the version`;

export async function main(argv: string[]): Promise<number> {
  let args = argv;
  let debug = false;
  while (args[0]?.startsWith('-')) {
    const a = args[0];
    if (a === '--debug' || a === '-debug') debug = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write(HELP + '\n');
      return 0;
    } else if (a === '-v' || a === '--version') {
      process.stdout.write('atomfs 0.1.0\n');
      return 0;
    } else {
      process.stderr.write(`Incorrect Usage: flag provided but not defined: ${a}\n${HELP}\n`);
      return 2;
    }
    args = args.slice(1);
  }
  const [cmd, ...rest] = args;
  try {
    if (cmd !== undefined && COMMANDS.has(cmd) && wantsHelp(rest)) {
      process.stdout.write((await helpFor(cmd, rest[0])) + '\n');
      return 0;
    }
    switch (cmd) {
      case 'sqfs':
        return await (await sqfs()).sqfsCommand(rest, debug);
      case 'erofs':
        return await (await erofs()).erofsCommand(rest, debug);
      case 'mount':
        return await (await image()).mountCommand(rest, debug);
      case 'umount':
      case 'unmount':
        return await (await image()).umountCommand(rest, debug);
      case 'verify':
        return await (await verify()).verifyCommand(rest);
      case 'list':
        return (await image()).listCommand(rest);
      case 'ls':
      case 'cat':
        return await (await image()).imageReadCommand(cmd, rest);
      case 'verity':
        return await (await verity()).verityCommand(rest);
      case 'pull':
        return await (await import('./commands/pull.js')).pullCommand(rest);
      case '__serve':
        return await (await import('./commands/serve.js')).serveCommand(rest);
      case undefined:
        process.stderr.write(HELP + '\n');
        return 2;
      case 'help':
      case 'h':
        if (rest[0] !== undefined && !COMMANDS.has(rest[0])) throw new UsageError(`no help for unknown command "${rest[0]}"`);
        process.stdout.write((await helpFor(rest[0], rest[1])) + '\n');
        return 0;
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      const help = await helpFor(cmd, rest[0]);
      process.stderr.write(`Incorrect Usage: ${err.message}\n${help}\n`);
      return 2;
    }
    if (err instanceof CommandError || !debug) {
      process.stderr.write(`Error: ${(err as Error).message}\n`);
    } else {
      process.stderr.write(`Error: ${(err as Error).stack}\n`);
    }
    return 1;
  }
}
