import { mkdirSync } from 'node:fs';
import { argBytes, parse, rawArgs } from '../args.js';
import { attrRecord, entryType, type ListingRecord } from '../listing.js';
import { CommandError, UsageError } from '../errors.js';
import { openImageOverlay } from '../layers/image-overlay.js';
import { layerSpecs } from '../layers/layer-spec.js';
import { namespaceDir } from '../metadir.js';
import { listMounts, mount, umount, type AtomfsMount } from '../api.js';
import { resolveTarget } from '../molecule.js';
import { namespaceHasNoOtherProcess } from '../host.js';
import { resolveRef } from './image-ref.js';

export const MOUNT_HELP = `Usage: atomfs mount [options] OCIDIR:TAG|docker://HOST[:PORT]/REPO:TAG TARGET

Mount the image TAG of the OCI layout OCIDIR at TARGET (an existing directory), read-only unless
--writeable. OCIDIR:TAG splits at the first colon (the tag may contain colons).

As host root, images without root hashes are mounted by the kernel (loop + squashfs per layer +
overlayfs). Otherwise — not host root (e.g. uid 0 in 'unshare -Umr'), or layers with dm-verity
root hashes on a kernel without device-mapper — atomfs serves the merged layers with its own FUSE
server and checks every data block against the layer's dm-verity tree before using it. Every uid
may use the mount (permissions are the image's, checked by the kernel), as a container rootfs
needs. As host root, setuid programs and device nodes of the image work, as on the kernel path:
anyone who can reach TARGET can run them, so mount under a directory only you can enter, or use
--nosuid --nodev to inspect an image you do not trust.

Options:
  --writeable, --writable   writable overlay; changes are lost at umount (kept in the metadir)
  --upper DIR               writable overlay whose changes land directly in DIR (kept after umount)
  --persist DIR             writable overlay keeping changes in DIR/persist (work dir DIR/work)
  --allow-missing-verity    mount layers that have no root hash (served unchecked)
  --nosuid, --nodev         ignore setuid bits / device nodes of the image (always so in a user namespace)
  --metadir DIR             runtime dir for mount state; default /run/atomfs as host root, else
                            $XDG_RUNTIME_DIR/atomfs, else /tmp/atomfs-run-<uid> (0700)
  --backend auto|kernel|fuse  force a mount path (default auto)
  --insecure                docker:// images: plain HTTP (registries on loopback only)
  --debug                   say what is done, on stderr

In a user namespace the mount exists only in that namespace: mount, use and unmount from one
shell inside it, e.g.  unshare -Umr sh -c 'atomfs mount IMG:TAG dir && ls dir && atomfs umount dir'`;

export const UMOUNT_HELP = `Usage: atomfs umount [--metadir DIR] TARGET

Undo everything 'atomfs mount' did at TARGET (also when its server died, or its metadata was
deleted) and remove its metadata; an --upper or --persist dir is kept. A busy mount is left
as it was.`;

const NOT_ROOT = `Please run as root, or in a user namespace
 You could try:
\tlxc-usernsexec -s -- /bin/bash
 or
\tunshare -Umr -- /bin/bash
then run from that shell
`;

/** Ctrl-C, SIGTERM or SIGHUP while mounting: stop, undo every step, exit non-zero. */
function abortOnSignals(): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  const stop = () => ac.abort();
  const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of sigs) process.on(s, stop);
  return { signal: ac.signal, done: () => sigs.forEach((s) => process.off(s, stop)) };
}

/**
 * Paths of mount state (targets, metadirs, upper dirs) must be UTF-8: they are stored in JSON
 * records and passed through mount options. A name Node would have decoded lossily (bytes that
 * are not UTF-8) is refused by name instead of silently meaning another path.
 */
function requireUtf8(args: string[]): string[] {
  const raw = rawArgs(args);
  for (const a of raw) {
    if (/[\udc80-\udcff]/.test(a)) throw new CommandError(`"${escapeForMessage(a)}": atomfs needs paths that are valid UTF-8 for mounts`);
  }
  return raw;
}

function escapeForMessage(a: string): string {
  return a.replace(/[\udc80-\udcff]/g, (c) => `\\x${(c.charCodeAt(0) - 0xdc00).toString(16)}`);
}

export async function mountCommand(argv: string[], globalDebug: boolean): Promise<number> {
  const { values, positionals } = parse(requireUtf8(argv), {
    writeable: { type: 'boolean' },
    writable: { type: 'boolean' },
    persist: { type: 'string' },
    upper: { type: 'string' },
    'allow-missing-verity': { type: 'boolean' },
    nosuid: { type: 'boolean' },
    nodev: { type: 'boolean' },
    metadir: { type: 'string' },
    backend: { type: 'string' },
    insecure: { type: 'boolean' },
    debug: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(MOUNT_HELP + '\n');
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`mount takes OCIDIR:TAG TARGET (${positionals.length} argument${positionals.length === 1 ? '' : 's'} given)`);
  const backend = values.backend ?? 'auto';
  if (backend !== 'auto' && backend !== 'kernel' && backend !== 'fuse') throw new UsageError(`--backend must be auto, kernel or fuse, not "${backend}"`);
  if (values.persist === '') throw new CommandError('--persist requires an argument');
  if (values.upper === '') throw new CommandError('--upper requires an argument');
  if (values.metadir === '') throw new UsageError('--metadir needs a directory (it is empty)');
  if (values.upper !== undefined && values.persist !== undefined) throw new UsageError('--upper and --persist exclude each other');
  if (process.geteuid?.() !== 0) {
    await resolveRef(positionals[0]!, { insecure: values.insecure === true }); // Go atomfs reports a bad image reference first
    process.stdout.write(NOT_ROOT);
    return 1;
  }
  const target = resolveTarget(positionals[1]!);
  const debug = values.debug === true || globalDebug;
  const interrupt = abortOnSignals();
  let mounted: AtomfsMount;
  try {
    mounted = await mount({
      image: positionals[0]!,
      target,
      writeable: values.writeable === true || values.writable === true,
      ...(values.persist !== undefined ? { persist: values.persist } : {}),
      ...(values.upper !== undefined ? { upper: values.upper } : {}),
      allowMissingVerity: values['allow-missing-verity'] === true,
      nosuid: values.nosuid === true,
      nodev: values.nodev === true,
      ...(values.metadir !== undefined ? { metadir: values.metadir } : {}),
      backend,
      insecure: values.insecure === true,
      signal: interrupt.signal,
      debug: (m) => {
        if (debug) process.stderr.write(`atomfs: ${m}\n`);
      },
    });
  } catch (err) {
    interrupt.done();
    throw err;
  }
  // The listeners stay: a Ctrl-C after the mount is complete finds nothing left to stop, and the
  // command still exits 0 (Node's default action would end it by the signal, the mount in place).
  if (namespaceHasNoOtherProcess()) {
    process.stderr.write(
      `atomfs: warning: no other process shares this mount namespace: ${target} is mounted only inside it, where no shell can reach it once atomfs exits${mounted.serverPid !== undefined ? ` (its server, pid ${mounted.serverPid}, keeps it until killed)` : ''}; mount, use and umount from one shell in the namespace (unshare -Umr sh -c '...')\n`,
    );
  }
  return 0;
}

export async function umountCommand(argv: string[], globalDebug: boolean): Promise<number> {
  const { values, positionals } = parse(requireUtf8(argv), { metadir: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    process.stdout.write(UMOUNT_HELP + '\n');
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('umount takes TARGET');
  if (values.metadir === '') throw new UsageError('--metadir needs a directory (it is empty)');
  await umount(positionals[0]!, {
    ...(values.metadir !== undefined ? { metadir: values.metadir } : {}),
    debug: (m) => {
      if (globalDebug) process.stderr.write(`atomfs: ${m}\n`);
    },
  });
  // Go contract: meta/<mntns>/ stays (empty) after umount.
  mkdirSync(namespaceDir(values.metadir), { recursive: true });
  return 0;
}

export const LIST_HELP = `Usage: atomfs list [--json] [--metadir DIR]

List the image mounts recorded in this mount namespace: target, image, backend, and whether it
is live (mounted and served) or stale (what a crash or a plain umount left; 'atomfs umount
TARGET' cleans it). --json prints one JSON object per line.`;

export function listCommand(argv: string[]): number {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, metadir: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    process.stdout.write(LIST_HELP + '\n');
    return 0;
  }
  if (positionals.length > 0) throw new UsageError('list takes no arguments');
  if (values.metadir === '') throw new UsageError('--metadir needs a directory (it is empty)');
  for (const m of listMounts(values.metadir !== undefined ? { metadir: values.metadir } : {})) {
    process.stdout.write(values.json ? JSON.stringify(m) + '\n' : `${m.target}\t${m.image}\t${m.backend}${m.writeable ? ',writeable' : ''}\t${m.live ? 'live' : 'stale'}\n`);
  }
  return 0;
}

export const IMAGE_READ_HELP = `Usage: atomfs ls [--json] [--allow-missing-verity] [--insecure] OCIDIR:TAG [PATH]
       atomfs cat [--allow-missing-verity] [--insecure] OCIDIR:TAG PATH

Read the merged image (all layers, as the mount shows it) without mounting it, every block
verified against the layers' root hashes. ls lists PATH (default /) recursively, one path a line
(raw bytes for names that are not UTF-8); --json prints one JSON object a line, the same form as
'atomfs sqfs ls --json' (see the README). cat writes a regular file's content to stdout.
OCIDIR:TAG may be docker://HOST[:PORT]/REPO:TAG (or @sha256:...): only the blocks read are
fetched (into the blob cache), each verified; --insecure allows plain HTTP to a loopback registry.`;

/** `atomfs ls|cat OCIDIR:TAG [PATH]`: read the merged image without mounting it. */
export async function imageReadCommand(cmd: 'ls' | 'cat', argv: string[]): Promise<number> {
  const { values, positionals } = parse(rawArgs(argv), { 'allow-missing-verity': { type: 'boolean' }, json: { type: 'boolean' }, insecure: { type: 'boolean' } });
  if (positionals.length < 1 || positionals.length > 2 || (cmd === 'cat' && positionals.length !== 2)) {
    throw new UsageError(cmd === 'cat' ? 'cat takes OCIDIR:TAG PATH' : 'ls takes OCIDIR:TAG [PATH]');
  }
  const { image } = await resolveRef(positionals[0]!, { insecure: values.insecure === true });
  const fs = openImageOverlay(layerSpecs(image.layers, values['allow-missing-verity'] === true));
  try {
    const ov = fs.overlay;
    const pathArg = positionals[1] ?? '/';
    const path = argBytes(pathArg);
    let id: bigint;
    try {
      id = ov.resolve(path);
    } catch (err) {
      throw new CommandError(`${pathArg}: ${(err as Error).message}`);
    }
    if (cmd === 'cat') await catFile(ov, id, pathArg);
    else await listTree(ov, id, path, values.json === true);
    return 0;
  } finally {
    fs.close();
  }
}

type Overlay = import('@atomfs/overlay').Overlay;

/** Write a file to stdout, waiting for a slow reader (memory stays at one chunk). */
async function catFile(ov: Overlay, id: bigint, pathArg: string): Promise<void> {
  const a = ov.getattr(id);
  if ((a.mode & 0o170000) !== 0o100000) throw new CommandError(`${pathArg}: not a regular file`);
  for (let pos = 0; pos < a.size; pos += 1 << 20) await write(process.stdout, Buffer.from(ov.read(id, pos, 1 << 20)));
}

async function write(out: NodeJS.WritableStream, data: string | Buffer): Promise<void> {
  if (!out.write(data)) await new Promise((r) => out.once('drain', r));
}

/** Every path below `start` (itself first), depth first, as lines of raw bytes or NDJSON. */
async function listTree(ov: Overlay, startId: bigint, start: Buffer, json: boolean): Promise<void> {
  const NL = Buffer.from('\n');
  const chunks: Buffer[] = [];
  let pending = 0;
  const emit = async (path: Buffer, id: bigint, attr: import('@atomfs/overlay').OverlayAttr): Promise<void> => {
    const line = json ? Buffer.from(JSON.stringify(recordOf(ov, path, id, attr)) + '\n') : Buffer.concat([path, NL]);
    chunks.push(line);
    pending += line.length;
    // Lines go out in 64 KiB writes: one write per entry cost more than the walk.
    if (pending >= 65536) {
      await write(process.stdout, Buffer.concat(chunks.splice(0)));
      pending = 0;
    }
  };
  const walk = async (dirId: bigint, prefix: Buffer, depth: number): Promise<void> => {
    if (depth > 4096) throw new CommandError('directory nesting too deep');
    for (const e of ov.readdir(dirId)) {
      const p = Buffer.concat([prefix, Buffer.from('/'), e.name]);
      await emit(p, e.id, e.attr);
      if ((e.attr.mode & 0o170000) === 0o040000) await walk(e.id, p, depth + 1);
    }
  };
  const a = ov.getattr(startId);
  await emit(start, startId, a);
  const prefix = start.length > 1 && start[start.length - 1] === 0x2f ? start.subarray(0, start.length - 1) : start;
  if ((a.mode & 0o170000) === 0o040000) await walk(startId, prefix.equals(Buffer.from('/')) ? Buffer.alloc(0) : prefix, 0);
  if (chunks.length > 0) await write(process.stdout, Buffer.concat(chunks));
}

function recordOf(ov: Overlay, path: Buffer, id: bigint, a: import('@atomfs/overlay').OverlayAttr): ListingRecord {
  return attrRecord(path, a, entryType(a.mode) === 'symlink' ? ov.readlink(id) : undefined);
}
