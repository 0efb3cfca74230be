import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { findMount } from '@atomfs/fuse';
import { OciError, parseImageRef, resolveImage, type ResolvedImage } from '@atomfs/oci';
import { verifyAll, VerityError } from '@atomfs/verity';
import { parse } from '../args.js';
import { CommandError, UsageError } from '../errors.js';
import { openOverlayFs } from '../fusefs/overlay-fs.js';
import { hashOffsetOf, type LayerSpec } from '../layers/open-layer.js';
import { metadirFor, namespaceDir, readRecord } from '../metadir.js';
import { layerSpecs, mountImage, umountImage } from '../molecule.js';
import { mkdirSync } from 'node:fs';
import { dmDevice, dmLayerStatus } from '../dm-verity.js';

export const MOUNT_HELP = `Usage: atomfs mount [options] OCIDIR:TAG TARGET

Mount the image TAG of the OCI layout OCIDIR at TARGET (an existing directory), read-only unless
--writeable. OCIDIR:TAG splits at the first colon (the tag may contain colons).

As host root, images without root hashes are mounted by the kernel (loop + squashfs per layer +
overlayfs). Otherwise — not host root (e.g. uid 0 in 'unshare -Umr'), or layers with dm-verity
root hashes on a kernel without device-mapper — atomfs serves the merged layers with its own FUSE
server and checks every data block against the layer's dm-verity tree before using it.

Options:
  --writeable, --writable   writable overlay; changes are lost at umount (kept in the metadir)
  --persist DIR             writable overlay keeping changes in DIR/persist (work dir DIR/work)
  --allow-missing-verity    mount layers that have no root hash (served unchecked)
  --metadir DIR             runtime dir instead of /run/atomfs
  --backend auto|kernel|fuse  force a mount path (default auto)
  --debug                   say what is done, on stderr`;

export const UMOUNT_HELP = `Usage: atomfs umount [--metadir DIR] TARGET

Undo everything 'atomfs mount' did at TARGET (also when its server died) and remove its metadata.`;

export const VERIFY_HELP = `Usage: atomfs verify [--json] [--metadir DIR] TARGET|OCIDIR:TAG

Check every block of every layer that has a root hash against its dm-verity tree: the layers of
the image mounted at TARGET, or of an image in an OCI layout. Prints "<layer>: OK" or
"<layer>: CORRUPTION FOUND" per layer; exit 1 if any layer is corrupt or none could be checked.`;

const NOT_ROOT = `Please run as root, or in a user namespace
 You could try:
\tlxc-usernsexec -s -- /bin/bash
 or
\tunshare -Umr -- /bin/bash
then run from that shell
`;

async function resolveRef(arg: string): Promise<{ ociDir: string; tag: string; image: ResolvedImage }> {
  let ref;
  try {
    ref = parseImageRef(arg);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (!existsSync(ref.dir)) throw new CommandError(`oci directory ${ref.dir} does not exist: Usage: atomfs mount [--writeable] [--persist=/tmp/upperdir] ocidir:tag target`);
  try {
    const image = await resolveImage(ref.dir, ref.tag);
    return { ociDir: resolve(ref.dir), tag: ref.tag, image };
  } catch (err) {
    if (err instanceof OciError) throw new CommandError(err.message);
    throw err;
  }
}

export async function mountCommand(argv: string[], globalDebug: boolean): Promise<number> {
  const { values, positionals } = parse(argv, {
    writeable: { type: 'boolean' },
    writable: { type: 'boolean' },
    persist: { type: 'string' },
    'allow-missing-verity': { type: 'boolean' },
    metadir: { type: 'string' },
    backend: { type: 'string' },
    debug: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(MOUNT_HELP + '\n');
    return 0;
  }
  if (positionals.length !== 2) throw new CommandError('Usage: atomfs mount [--writeable] [--persist=/tmp/upperdir] ocidir:tag target');
  const backend = values.backend ?? 'auto';
  if (backend !== 'auto' && backend !== 'kernel' && backend !== 'fuse') throw new UsageError(`--backend must be auto, kernel or fuse, not "${backend}"`);
  if (values.persist === '') throw new CommandError('--persist requires an argument');
  const { ociDir, tag, image } = await resolveRef(positionals[0]!);
  if (process.geteuid?.() !== 0) {
    process.stdout.write(NOT_ROOT);
    return 1;
  }
  const target = resolve(positionals[1]!);
  if (!existsSync(target) || !statSync(target).isDirectory()) throw new CommandError(`target ${target} does not exist or is not a directory`);
  const debug = values.debug === true || globalDebug;
  await mountImage({
    ociDir,
    tag,
    target,
    layers: image.layers,
    writeable: values.writeable === true || values.writable === true || values.persist !== undefined,
    persist: values.persist,
    allowMissingVerity: values['allow-missing-verity'] === true,
    metadirFlag: values.metadir,
    backend,
    debug: (m) => {
      if (debug) process.stderr.write(`atomfs: ${m}\n`);
    },
  });
  return 0;
}

export async function umountCommand(argv: string[], globalDebug: boolean): Promise<number> {
  const { values, positionals } = parse(argv, { metadir: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    process.stdout.write(UMOUNT_HELP + '\n');
    return 0;
  }
  if (positionals.length < 1) throw new UsageError('Usage: atomfs umount mountpoint');
  const target = resolve(positionals[0]!);
  await umountImage(target, values.metadir, (m) => {
    if (globalDebug) process.stderr.write(`atomfs: ${m}\n`);
  });
  // Go contract: meta/<mntns>/ stays (empty) after umount.
  mkdirSync(namespaceDir(values.metadir), { recursive: true });
  return 0;
}

interface LayerVerdict {
  layer: string;
  status: 'OK' | 'CORRUPTION FOUND' | 'NO ROOT HASH';
  error?: string;
}

export async function verifyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, metadir: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    process.stdout.write(VERIFY_HELP + '\n');
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('Usage: atomfs verify mountpoint');
  const arg = positionals[0]!;
  let layers: LayerSpec[];
  let where: string;
  const asPath = resolve(arg);
  if (existsSync(asPath) || findMount(asPath) !== undefined) {
    const metadir = metadirFor(asPath, values.metadir);
    const record = readRecord(metadir);
    if (findMount(asPath) === undefined) throw new CommandError(`${asPath} is not a mountpoint`);
    if (record === undefined) throw new CommandError(`${asPath} is not an atomfs mount (no metadata in ${metadir})`);
    layers = record.atomfs.layers;
    where = `${metadir}/mounts`;
    const dmSteps = record.atomfs.mounts.filter((m) => m.dm !== undefined);
    if (record.atomfs.backend === 'kernel') {
      // The kernel verifies these; ask device-mapper what it saw (Go atomfs's verify).
      if (dmSteps.length === 0) throw new CommandError(`no applicable mounts found in "${where}"`);
      let bad = false;
      for (const m of dmSteps) {
        const status = dmLayerStatus(m.dm!);
        bad ||= status !== 'OK';
        process.stdout.write(`${dmDevice(m.dm!)}: ${status}\n`);
      }
      if (bad) throw new CommandError('Found corrupt devices in molecule');
      return 0;
    }
  } else {
    const { image } = await resolveRef(arg);
    layers = layerSpecs(image.layers, true);
    where = arg;
  }
  const verdicts: LayerVerdict[] = [];
  const tty = process.stderr.isTTY === true && values.json !== true;
  for (const l of layers) {
    if (l.rootHash === undefined) {
      verdicts.push({ layer: l.digest, status: 'NO ROOT HASH' });
      continue;
    }
    // A path (not an open source) lets verifyAll hash on worker threads: ~2x on two cores.
    try {
      await verifyAll(l.path, {
        hashOffset: hashOffsetOf(l.path),
        rootHash: l.rootHash,
        label: l.digest,
        ...(tty ? { onProgress: (d: number, t: number) => process.stderr.write(`\r${l.digest.slice(0, 19)} ${((100 * d) / Math.max(t, 1)).toFixed(0).padStart(3)}%`) } : {}),
      });
      verdicts.push({ layer: l.digest, status: 'OK' });
    } catch (err) {
      if (!(err instanceof VerityError) && !(err instanceof Error)) throw err;
      verdicts.push({ layer: l.digest, status: 'CORRUPTION FOUND', error: (err as Error).message });
    } finally {
      if (tty) process.stderr.write('\r\x1b[K');
    }
  }
  const checked = verdicts.filter((v) => v.status !== 'NO ROOT HASH');
  if (values.json) process.stdout.write(JSON.stringify(verdicts, null, 1) + '\n');
  else for (const v of verdicts) process.stdout.write(`${v.layer}: ${v.status}${v.error ? ` (${v.error})` : ''}\n`);
  if (checked.length === 0) throw new CommandError(`no applicable mounts found in "${where}"`);
  if (checked.some((v) => v.status !== 'OK')) throw new CommandError('Found corrupt devices in molecule');
  return 0;
}

/** `atomfs ls|cat OCIDIR:TAG [PATH]`: read the merged image without mounting it. */
export async function imageReadCommand(cmd: 'ls' | 'cat', argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { 'allow-missing-verity': { type: 'boolean' }, json: { type: 'boolean' } });
  if (positionals.length < 1 || positionals.length > 2 || (cmd === 'cat' && positionals.length !== 2)) {
    throw new UsageError(cmd === 'cat' ? 'cat takes OCIDIR:TAG PATH' : 'ls takes OCIDIR:TAG [PATH]');
  }
  const { image } = await resolveRef(positionals[0]!);
  const fs = openOverlayFs(layerSpecs(image.layers, values['allow-missing-verity'] === true));
  try {
    const ov = (fs as unknown as { overlay: import('@atomfs/overlay').Overlay }).overlay;
    const path = positionals[1] ?? '/';
    let id: bigint;
    try {
      id = ov.resolve(path);
    } catch (err) {
      throw new CommandError(`${path}: ${(err as Error).message}`);
    }
    if (cmd === 'cat') {
      const a = ov.getattr(id);
      if ((a.mode & 0o170000) !== 0o100000) throw new CommandError(`${path}: not a regular file`);
      for (let pos = 0; pos < a.size; pos += 1 << 20) process.stdout.write(Buffer.from(ov.read(id, pos, 1 << 20)));
      return 0;
    }
    const out: string[] = [];
    const walk = (dirId: bigint, prefix: string, depth: number): void => {
      if (depth > 4096) throw new CommandError('directory nesting too deep');
      for (const e of ov.readdir(dirId)) {
        const p = `${prefix}/${e.name.toString('utf8')}`;
        out.push(values.json ? JSON.stringify({ path: p, mode: e.attr.mode, uid: e.attr.uid, gid: e.attr.gid, size: e.attr.size, mtime: e.attr.mtime }) : p);
        if ((e.attr.mode & 0o170000) === 0o040000) walk(e.id, p, depth + 1);
      }
    };
    const a = ov.getattr(id);
    out.push(values.json ? JSON.stringify({ path, mode: a.mode }) : path);
    if ((a.mode & 0o170000) === 0o040000) walk(id, path === '/' ? '' : path.replace(/\/$/, ''), 0);
    process.stdout.write(values.json ? `[${out.join(',\n')}]\n` : out.join('\n') + '\n');
    return 0;
  } finally {
    fs.close();
  }
}

export { VerityError };
