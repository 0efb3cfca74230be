import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { findMount } from '@atomfs/fuse/mountinfo';
import { resolveRef } from './commands/image-ref.js';
import { CommandError } from './errors.js';
import { namespaceDir, readRecord, type Backend, type MountRecord } from './metadir.js';
import { mountImage, resolveTarget, umountImage } from './molecule.js';
import { isRunning } from './undo.js';

/**
 * The library API a container runtime calls (Go atomfs's Molecule API, in Node): the CLI's
 * mount and umount are thin shells over these. Errors are Error subclasses with one-line messages.
 */

export interface MountRequest {
  /** "OCIDIR:TAG" (split at the first colon). */
  image: string;
  /** An existing directory; symlinks are resolved. */
  target: string;
  /** A writable overlay whose changes are lost at umount. */
  writeable?: boolean;
  /** A writable overlay whose changes land directly in this dir (kept after umount). */
  upper?: string;
  /** Go atomfs's --persist: changes in DIR/persist, overlay work dir DIR/work. */
  persist?: string;
  /** Mount layers without a root hash (served unchecked). */
  allowMissingVerity?: boolean;
  /** Ignore setuid bits / device nodes (they are ignored in a user namespace anyway). */
  nosuid?: boolean;
  nodev?: boolean;
  /** Runtime dir for mount state (default: see runtimeDir in metadir.ts and the README). */
  metadir?: string;
  backend?: 'auto' | Backend;
  /** A docker:// image over plain HTTP (registries on loopback only). */
  insecure?: boolean;
  /** Aborting undoes every step made and rejects with InterruptedError. */
  signal?: AbortSignal;
  /** Progress lines ("backend fuse, metadir ..."). */
  debug?: (message: string) => void;
}

/** A mount as its record describes it. */
export interface AtomfsMount {
  target: string;
  /** "OCIDIR:TAG". */
  image: string;
  backend: Backend;
  writeable: boolean;
  /** --upper / --persist dir, if any. */
  changesDir?: string;
  layers: { digest: string; rootHash?: string }[];
  /** The FUSE server's pid (FUSE backend). */
  serverPid?: number;
  /** Mounted and (FUSE) served right now; false for what a crash or a plain umount left. */
  live: boolean;
}

/** Mount an image; resolves once the mount serves, with what was mounted. */
export async function mount(req: MountRequest): Promise<AtomfsMount> {
  if (process.geteuid?.() !== 0) throw new CommandError('Please run as root, or in a user namespace (e.g. unshare -Umr)');
  const { ociDir, tag, image } = await resolveRef(req.image, { insecure: req.insecure === true });
  // A registry image is read lazily through the blob cache: only the FUSE server can do that.
  const remote = image.layers.some((l) => 'remote' in l);
  if (remote && req.backend === 'kernel') throw new CommandError(`${req.image}: registry images are served by the FUSE backend (the kernel needs local layer files: copy the image to an OCI layout to mount it with --backend kernel)`);
  const target = resolveTarget(req.target);
  if (!existsSync(target) || !statSync(target).isDirectory()) throw new CommandError(`target ${target} does not exist or is not a directory`);
  const record = await mountImage({
    ociDir,
    tag,
    target,
    layers: image.layers,
    writeable: req.writeable === true || req.upper !== undefined || req.persist !== undefined,
    persist: req.persist,
    upper: req.upper,
    allowMissingVerity: req.allowMissingVerity === true,
    nosuid: req.nosuid === true,
    nodev: req.nodev === true,
    metadirFlag: req.metadir,
    backend: remote ? 'fuse' : (req.backend ?? 'auto'),
    ...(req.signal !== undefined ? { signal: req.signal } : {}),
    debug: req.debug ?? (() => {}),
  });
  return describeRecord(record);
}

/** Undo everything mount() did at `target` (also after its server died); a busy mount is left as it was. */
export async function umount(target: string, opts: { metadir?: string; debug?: (m: string) => void } = {}): Promise<void> {
  await umountImage(target, opts.metadir, opts.debug ?? (() => {}));
}

/** The atomfs image mounts recorded in this mount namespace under the runtime dir. */
export function listMounts(opts: { metadir?: string } = {}): AtomfsMount[] {
  const dir = namespaceDir(opts.metadir);
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  const out: AtomfsMount[] = [];
  for (const name of names) {
    try {
      const r = readRecord(join(dir, name));
      if (r !== undefined) out.push(describeRecord(r));
    } catch {
      // a record we may not trust is not listed
    }
  }
  return out;
}

function describeRecord(r: MountRecord): AtomfsMount {
  const pid = r.atomfs.serverPid;
  const mounted = findMount(r.Target) !== undefined;
  const live = r.atomfs.complete !== false && mounted && (r.atomfs.backend === 'kernel' || (pid !== undefined && isRunning(pid)));
  return {
    target: r.Target,
    image: `${r.OCIDir}:${r.Tag}`,
    backend: r.atomfs.backend,
    writeable: r.AddWriteableOverlay,
    ...(r.WriteableOverlayPath !== '' ? { changesDir: r.WriteableOverlayPath } : {}),
    layers: r.atomfs.layers.map((l) => ({ digest: l.digest, ...(l.rootHash !== undefined ? { rootHash: l.rootHash } : {}) })),
    ...(pid !== undefined ? { serverPid: pid } : {}),
    live,
  };
}
