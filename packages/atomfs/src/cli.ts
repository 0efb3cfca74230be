import { CommandError, UsageError } from './errors.js';

// Command modules are imported when their command runs: loading every package (FUSE, overlay,
// OCI, verity, the decoders) up front cost each invocation about 0.3 s, which a short
// `atomfs verify` or `atomfs sqfs cat` paid in full.
const image = () => import('./commands/image.js');
const sqfs = () => import('./commands/sqfs.js');
const verity = () => import('./commands/verity.js');
const verify = () => import('./commands/verify.js');

/** The help text printed after a usage error of `cmd` (its module is loaded by then). */
async function helpFor(cmd: string | undefined): Promise<string> {
  switch (cmd) {
    case 'sqfs':
      return (await sqfs()).SQFS_HELP;
    case 'mount':
      return (await image()).MOUNT_HELP;
    case 'umount':
    case 'unmount':
      return (await image()).UMOUNT_HELP;
    case 'verify':
      return (await verify()).VERIFY_HELP;
    case 'list':
      return (await image()).LIST_HELP;
    default:
      return HELP;
  }
}

export const HELP = `Usage: atomfs [--debug] <command> [options] ...

Mount and read OCI images made of squashfs layers with dm-verity data (as stacker builds them).

Commands:
  mount    mount an OCI image: atomfs mount [--writeable] [--persist DIR] [--allow-missing-verity]
           [--metadir DIR] [--backend auto|kernel|fuse] OCIDIR:TAG TARGET
  umount   unmount it: atomfs umount [--metadir DIR] TARGET
  list     the image mounts of this mount namespace: atomfs list [--json] [--metadir DIR]
  verify   check every block of every layer against dm-verity: atomfs verify TARGET|OCIDIR:TAG
  ls       list the merged image without mounting: atomfs ls OCIDIR:TAG [PATH]
  cat      print a file of the merged image: atomfs cat OCIDIR:TAG PATH
  sqfs     read or mount a single squashfs image (ls, cat, extract, info, mount, umount)
  verity   append dm-verity data to a squashfs layer file (format), or show it (dump)
  help     show this help

'atomfs <command> --help' tells more.

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
      return 1;
    }
    args = args.slice(1);
  }
  const [cmd, ...rest] = args;
  try {
    switch (cmd) {
      case 'sqfs':
        return await (await sqfs()).sqfsCommand(rest, debug);
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
      case '__serve':
        return await (await import('./commands/serve.js')).serveCommand(rest);
      case undefined:
      case 'help':
      case 'h':
        process.stdout.write(HELP + '\n');
        return cmd === undefined ? 1 : 0;
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      const help = await helpFor(cmd);
      process.stderr.write(`Incorrect Usage: ${err.message}\n${help}\n`);
      return 1;
    }
    if (err instanceof CommandError || !debug) {
      process.stderr.write(`Error: ${(err as Error).message}\n`);
    } else {
      process.stderr.write(`Error: ${(err as Error).stack}\n`);
    }
    return 1;
  }
}
