import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { LayerSpec } from './layers/layer-spec.js';
import { CommandError } from './errors.js';
import { hostUid, isHostRoot, mountNamespaceId, overflowUid } from './host.js';

/**
 * The runtime dir: $ATOMFS_TEST_RUN_DIR, else --metadir, else /run/atomfs for host root (as Go
 * atomfs); anyone else (a user in a user namespace) cannot write /run/atomfs, so, as rootless
 * container tools do, $XDG_RUNTIME_DIR/atomfs, else a private per-user dir in /tmp named by the
 * host uid, which mount, umount and verify all find without a flag.
 */
export function runtimeDir(metadirFlag: string | undefined): string {
  const env = process.env.ATOMFS_TEST_RUN_DIR;
  if (env !== undefined && env !== '') return env;
  if (metadirFlag !== undefined) {
    if (metadirFlag === '') throw new CommandError('--metadir needs a directory (it is empty)');
    return metadirFlag;
  }
  if (isHostRoot()) return '/run/atomfs';
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg !== undefined && xdg.startsWith('/')) return join(xdg, 'atomfs');
  return `/tmp/atomfs-run-${hostUid()}`;
}

/** "/tmp/x/mp" → "tmp-x-mp": Go atomfs's munging, which maps "a-b" and "a/b" to one name. */
export function mungeTarget(absTarget: string): string {
  return absTarget.replace(/^\/+/, '').replace(/\//g, '-');
}

/** NAME_MAX is 255 bytes; longer escaped names are shortened and told apart by a digest. */
const MAX_NAME = 200;

/**
 * The metadir name of a target: `systemd-escape --path`, which is injective ("/" becomes "-", a
 * "-" becomes "\x2d"), so no two targets share a metadir. Names too long for one path component
 * keep their start and end in a digest of the whole path ("~" never occurs in an escaped name).
 */
export function escapeTarget(absTarget: string): string {
  const trimmed = absTarget.replace(/\/+/g, '/').replace(/^\/|\/$/g, '');
  if (trimmed === '') return '-';
  let out = '';
  const bytes = Buffer.from(trimmed, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const c = String.fromCharCode(b);
    if (c === '/') out += '-';
    else if (/[A-Za-z0-9:_]/.test(c) || (c === '.' && i > 0)) out += c;
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  if (out.length <= MAX_NAME) return out;
  const digest = createHash('sha256').update(absTarget).digest('hex').slice(0, 32);
  return `${out.slice(0, MAX_NAME - 34)}~${digest}`;
}

export function namespaceDir(metadirFlag: string | undefined): string {
  return join(runtimeDir(metadirFlag), 'meta', mountNamespaceId());
}

export function metadirFor(absTarget: string, metadirFlag: string | undefined): string {
  return join(namespaceDir(metadirFlag), escapeTarget(absTarget));
}

/** Where the per-target and device locks live (not in meta/<mntns>, which Go leaves empty). */
export function lockDir(metadirFlag: string | undefined): string {
  return join(runtimeDir(metadirFlag), 'lock', mountNamespaceId());
}

export type Backend = 'kernel' | 'fuse';

/** One mount made for this image, in the order made (umount goes in reverse). */
export interface MountStep {
  target: string;
  kind: 'layer' | 'fuse' | 'overlay';
  /** Layer hex of a kernel dm-verity device this mount uses (closed when its last user goes). */
  dm?: string;
  /** Recorded before the mount is tried; removed once it succeeded. */
  pending?: true;
}

/**
 * config.json: Go atomfs's MountOCIOpts fields (scripts read them), plus what our umount needs
 * to undo the mount exactly. Each step is recorded before it can take effect and the server's
 * pid as soon as it exists, so a mount interrupted at any instant leaves a record that a later
 * mount or umount can undo; `complete` is set when the mount command returned success.
 */
export interface MountRecord {
  OCIDir: string;
  Tag: string;
  Target: string;
  AddWriteableOverlay: boolean;
  WriteableOverlayPath: string;
  AllowMissingVerityData: boolean;
  MetadataDir: string;
  atomfs: {
    backend: Backend;
    layers: LayerSpec[];
    mounts: MountStep[];
    serverPid?: number;
    serverLog?: string;
    /** --upper: the overlay's work dir, made beside the upper dir and removed at umount. */
    workDir?: string;
    complete?: boolean;
  };
}

export function writeRecord(metadir: string, record: MountRecord): void {
  mkdirSync(metadir, { recursive: true, mode: 0o700 });
  const tmp = join(metadir, '.config.json.tmp');
  writeFileSync(tmp, JSON.stringify(record, null, 1) + '\n', { mode: 0o644 });
  renameSync(tmp, join(metadir, 'config.json'));
}

/**
 * The record in `metadir`, if there is a well-formed one that this user may trust: a record
 * another user could have written (as a planted config.json in a shared --metadir) would make
 * us unmount whatever it names, so it is refused with an error, not ignored.
 */
export function readRecord(metadir: string): MountRecord | undefined {
  const file = join(metadir, 'config.json');
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  let text: string;
  try {
    requireOwned(file, fstatSync(fd));
    text = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
  try {
    const r = JSON.parse(text) as MountRecord;
    if (typeof r.Target !== 'string' || typeof r.atomfs !== 'object' || !Array.isArray(r.atomfs.mounts)) return undefined;
    return r;
  } catch {
    return undefined;
  }
}

/** The record of `absTarget`: ours, or one Go atomfs (or an older atomfs) wrote under its munged name. */
export function findRecord(absTarget: string, metadirFlag: string | undefined): { metadir: string; record: MountRecord } | undefined {
  const ours = metadirFor(absTarget, metadirFlag);
  const record = readRecord(ours);
  if (record !== undefined) return { metadir: ours, record };
  const legacy = join(namespaceDir(metadirFlag), mungeTarget(absTarget));
  if (legacy === ours) return undefined;
  const old = readRecord(legacy);
  return old !== undefined && old.Target === absTarget ? { metadir: legacy, record: old } : undefined;
}

export class UntrustedStateError extends CommandError {
  override name = 'UntrustedStateError';
}

interface Owned {
  uid: number;
  mode: number;
}

/** A file or dir of mount state must be this user's and writable by nobody else. */
function requireOwned(path: string, st: Owned): void {
  const me = process.geteuid?.() ?? 0;
  if (st.uid !== me) throw new UntrustedStateError(`refusing mount state ${path}: owned by uid ${st.uid}, not by you (uid ${me})`);
  if ((st.mode & 0o022) !== 0) {
    throw new UntrustedStateError(`refusing mount state ${path}: writable by others (mode ${(st.mode & 0o7777).toString(8)}); chmod go-w it`);
  }
}

/**
 * Make (if missing) and check the runtime dir and `sub` below it, as ssh's StrictModes does: the
 * dirs we keep state in are ours and writable by nobody else; every dir above the runtime dir
 * belongs to root, to us or (in a user namespace) to an unmapped owner, and is writable by
 * others only with the sticky bit (as /tmp).
 */
export function ensureStateDir(metadirFlag: string | undefined, ...sub: string[]): string {
  const run = runtimeDir(metadirFlag);
  try {
    mkdirSync(dirname(run), { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new CommandError(`cannot create ${dirname(run)}: ${(err as Error).message}`);
  }
  checkAncestors(realpathSync(dirname(run)));
  makeOwnedDir(run);
  let dir = run;
  for (const s of sub) {
    dir = join(dir, s);
    makeOwnedDir(dir);
  }
  return dir;
}

function makeOwnedDir(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new CommandError(`cannot create ${dir}: ${(err as Error).message}`);
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new UntrustedStateError(`refusing mount state ${dir}: not a directory`);
  requireOwned(dir, st);
}

/** `start` is a real path (no symlinks), so each dir checked is one the kernel walks. */
function checkAncestors(start: string): void {
  const me = process.geteuid?.() ?? 0;
  const trusted = new Set([0, me]);
  if (!isHostRoot()) trusted.add(overflowUid());
  for (let dir = start; ; dir = dirname(dir)) {
    const st = lstatSync(dir);
    const othersWrite = (st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0;
    if (!trusted.has(st.uid) || othersWrite) {
      throw new UntrustedStateError(`refusing mount state under ${dir}: ${othersWrite ? 'writable by others' : `owned by uid ${st.uid}`}; choose a --metadir only you can change`);
    }
    if (dir === '/') break;
  }
}
