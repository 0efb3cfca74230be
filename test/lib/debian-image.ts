/**
 * A real Debian rootfs as a 3-layer stacker-format OCI image, for the container-rootfs tests and
 * the benchmarks: `debootstrap --variant=minbase` of the host's Debian release is the bottom
 * layer; two more layers are made the way stacker makes them — a writable kernel overlayfs
 * (`userxattr`) over the layers so far, a shell script changing files through it, and its upper
 * dir (with the kernel's own whiteouts and opaque markers) packed as the next layer. Every layer is
 * `mksquashfs -comp zstd` with dm-verity data appended by `veritysetup format` at the end of the
 * squashfs file; the root hashes go into the manifest's layer annotations.
 *
 * Built once and cached under /var/tmp/atomfs-test-debian/<release>-<arch>-v<version>/ (the
 * build takes minutes; the cache survives test runs). Bump DEBIAN_IMAGE_VERSION whenever the
 * recipe below changes, so no run uses an image of an older recipe.
 *
 * Also: the same layers mounted by the kernel (loop + squashfs per layer, overlayfs over them) —
 * the reference every comparison of the tests is made against.
 *
 * From bench/ (another tsc project): add `{ "path": "../test" }` to bench/tsconfig.json's
 * references, take the types with `import type { DebianImage } from '../test/lib/debian-image.js'`
 * and load the code at run time from the compiled tree, whose place differs from the source's:
 * `await import(new URL('../../test/dist/lib/debian-image.js', import.meta.url).href)`.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeLayout } from '@atomfs/oci';
import { readMountinfo, trackBackingFile, trackMount, unmountSync, type CleanupStack } from './cleanup.js';
import { run, runSync, sleepSync } from './exec.js';

/** Bump when the recipe (debootstrap call, layer scripts, packing) changes. */
export const DEBIAN_IMAGE_VERSION = '1';
export const DEBIAN_CACHE_ROOT = '/var/tmp/atomfs-test-debian';
export const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
export const DEBIAN_TAG = 'debian';

const VERITY_BLOCK = 4096;

export class DebianImageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Seconds spent in each step of a build (as recorded when the cached image was built). */
export interface DebianBuildTimes {
  debootstrap: number;
  /** Overlay rounds that make layers 2 and 3. */
  layers: number;
  /** mksquashfs + veritysetup format of the 3 layers, and the OCI layout. */
  pack: number;
  total: number;
  /** debootstrap attempts (2 when the first one failed). */
  attempts: number;
}

export interface DebianImage {
  /** The OCI layout directory. */
  ociDir: string;
  tag: string;
  /** `ociDir:tag`, what `atomfs mount` takes. */
  ref: string;
  /** Debian codename (the host's, e.g. "bookworm"). */
  release: string;
  /** Blob files in the layout, BOTTOM-most first: squashfs followed by its dm-verity data. */
  layers: string[];
  /** Bytes of the squashfs part of each layer (= where its verity data starts). */
  squashfsBytes: number[];
  rootHashes: string[];
  /** How long the build that made this cached image took. */
  build: DebianBuildTimes;
  /** True when this call built it, false when it came from the cache. */
  fresh: boolean;
}

export interface DebianImageOptions {
  /** Default: the host's VERSION_CODENAME (the host must be Debian). */
  release?: string;
  /** Default DEBIAN_CACHE_ROOT. */
  cacheRoot?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** The host's Debian codename from /etc/os-release; an error naming what was found otherwise. */
export function hostDebianRelease(): string {
  const text = readFileSync('/etc/os-release', 'utf8');
  const field = (k: string): string | undefined => {
    const m = new RegExp(`^${k}=(.*)$`, 'm').exec(text);
    return m ? m[1]!.replace(/^["']|["']$/g, '') : undefined;
  };
  const id = field('ID');
  const codename = field('VERSION_CODENAME');
  if (id !== 'debian' || !codename) throw new DebianImageError(`the Debian test image needs a Debian host (/etc/os-release: ID=${id ?? '?'}, VERSION_CODENAME=${codename ?? '?'})`);
  return codename;
}

/**
 * The cached Debian image (built now when missing). Plain function: no test framework needed,
 * usable from bench/. The layout and its blobs are world-readable (a user namespace or a
 * non-root user mounts it too).
 */
export async function debianImage(opts: DebianImageOptions = {}): Promise<DebianImage> {
  const release = opts.release ?? hostDebianRelease();
  if (!/^[a-z]+$/.test(release)) throw new DebianImageError(`bad Debian release name ${JSON.stringify(release)}`);
  const arch = runSync(['dpkg', '--print-architecture']).stdout.toString('utf8').trim();
  const root = resolve(opts.cacheRoot ?? DEBIAN_CACHE_ROOT);
  const final = join(root, `${release}-${arch}-v${DEBIAN_IMAGE_VERSION}`);
  const log = opts.log ?? ((l: string) => process.stderr.write(`debian-image: ${l}\n`));
  const cached = readCached(final);
  if (cached) return cached;

  mkdirSync(root, { recursive: true, mode: 0o755 });
  chmodSync(root, 0o755);
  // Built beside the final dir and renamed into place: an interrupted build never looks cached.
  const build = mkdtempSync(join(root, `.build-${release}-`));
  try {
    const times = await buildInto(build, release, log);
    chmodSync(build, 0o755);
    try {
      renameSync(build, final);
    } catch (e) {
      // Another process finished the same build first: use its image.
      const other = readCached(final);
      if (other) return other;
      throw new DebianImageError(`cannot move the built image to ${final}`, { cause: e });
    }
    const img = readCached(final);
    if (!img) throw new DebianImageError(`the image built in ${final} is incomplete`);
    log(`built in ${times.total.toFixed(1)} s (debootstrap ${times.debootstrap.toFixed(1)} s, layers ${times.layers.toFixed(1)} s, pack ${times.pack.toFixed(1)} s)`);
    return { ...img, fresh: true };
  } finally {
    if (existsSync(build)) removeBuildDir(build);
  }
}

interface CacheMeta {
  version: string;
  release: string;
  tag: string;
  layers: string[];
  squashfsBytes: number[];
  rootHashes: string[];
  build: DebianBuildTimes;
}

function readCached(dir: string): DebianImage | undefined {
  const metaFile = join(dir, 'image.json');
  if (!existsSync(metaFile)) return undefined;
  let m: CacheMeta;
  try {
    m = JSON.parse(readFileSync(metaFile, 'utf8')) as CacheMeta;
  } catch {
    return undefined;
  }
  if (m.version !== DEBIAN_IMAGE_VERSION) return undefined;
  const ociDir = join(dir, 'oci');
  const layers = m.layers.map((l) => join(ociDir, l));
  if (!existsSync(join(ociDir, 'index.json')) || !layers.every((l) => existsSync(l))) return undefined;
  for (const l of layers) trackBackingFile(l);
  return { ociDir, tag: m.tag, ref: `${ociDir}:${m.tag}`, release: m.release, layers, squashfsBytes: m.squashfsBytes, rootHashes: m.rootHashes, build: m.build, fresh: false };
}

/** rm -rf of a build dir, unmounting anything a failed round left mounted inside it first. */
function removeBuildDir(dir: string): void {
  const mps = readMountinfo()
    .map((m) => m.mountpoint)
    .filter((p) => p.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const mp of mps) unmountSync(mp);
  rmSync(dir, { recursive: true, force: true });
}

function secondsSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function buildInto(dir: string, release: string, log: (l: string) => void): Promise<DebianBuildTimes> {
  const t0 = process.hrtime.bigint();
  const base = join(dir, 'rootfs');
  log(`debootstrap --variant=minbase ${release} from ${DEBIAN_MIRROR} ...`);
  const attempts = await debootstrap(base, release, log);
  const debootstrapSeconds = secondsSince(t0);

  const t1 = process.hrtime.bigint();
  const dirs = [base, ...(await overlayRounds(join(dir, 'rounds'), base, [LAYER2, LAYER3]))];
  const layersSeconds = secondsSince(t1);

  const t2 = process.hrtime.bigint();
  const packed: Array<{ file: string; bytes: number; rootHash: string }> = [];
  for (const [i, d] of dirs.entries()) packed.push(await packVerityLayer(d, join(dir, `layer${i + 1}.sqfs`)));
  const ociDir = join(dir, 'oci');
  const written = await writeLayout(ociDir, { tag: DEBIAN_TAG, layers: packed.map((p) => ({ file: p.file, rootHash: p.rootHash })) });
  const packSeconds = secondsSince(t2);

  // Only the layout stays: the layer dirs and loose layer files are hundreds of MiB.
  for (const d of [base, join(dir, 'rounds'), ...packed.map((p) => p.file)]) rmSync(d, { recursive: true, force: true });
  runSync(['chmod', '-R', 'a+rX', ociDir]);
  const build: DebianBuildTimes = { debootstrap: debootstrapSeconds, layers: layersSeconds, pack: packSeconds, total: secondsSince(t0), attempts };
  const meta: CacheMeta = {
    version: DEBIAN_IMAGE_VERSION,
    release,
    tag: DEBIAN_TAG,
    layers: written.layers.map((l) => l.path.slice(ociDir.length + 1)),
    squashfsBytes: packed.map((p) => p.bytes),
    rootHashes: packed.map((p) => p.rootHash),
    build,
  };
  writeFileSync(join(dir, 'image.json'), JSON.stringify(meta, null, 2) + '\n', { mode: 0o644 });
  return build;
}

/** debootstrap, retried once (a mirror hiccup); a clear error with debootstrap's own words otherwise. */
async function debootstrap(target: string, release: string, log: (l: string) => void): Promise<number> {
  if (runSync(['sh', '-c', 'command -v debootstrap'], { allowFail: true }).status !== 0) {
    throw new DebianImageError('debootstrap is not installed (scripts/setup.sh installs it: apt-get install debootstrap)');
  }
  let last = '';
  for (let attempt = 1; attempt <= 2; attempt++) {
    rmSync(target, { recursive: true, force: true });
    const r = await run(['debootstrap', '--variant=minbase', release, target, DEBIAN_MIRROR], { allowFail: true, timeoutMs: 1_200_000 });
    if (r.status === 0) return attempt;
    const logFile = join(target, 'debootstrap', 'debootstrap.log');
    const detail = [r.stderr.toString('utf8'), r.stdout.toString('utf8').split('\n').slice(-5).join('\n'), existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-10).join('\n') : '']
      .join('\n')
      .trim();
    last = detail.length > 3000 ? '…' + detail.slice(-3000) : detail;
    log(`debootstrap attempt ${attempt} failed (exit ${r.status}):\n${last}`);
    if (attempt === 1) sleepSync(5000);
  }
  rmSync(target, { recursive: true, force: true });
  throw new DebianImageError(`debootstrap --variant=minbase ${release} ${DEBIAN_MIRROR} failed twice; last output:\n${last}`);
}

/** mksquashfs DIR OUT -comp zstd, then veritysetup format OUT OUT at the squashfs end (stacker's layout). */
async function packVerityLayer(dir: string, out: string): Promise<{ file: string; bytes: number; rootHash: string }> {
  await run(['mksquashfs', dir, out, '-noappend', '-quiet', '-no-progress', '-comp', 'zstd'], { timeoutMs: 900_000 });
  const bytes = statSync(out).size;
  // mksquashfs pads to 4 KiB: the verity data starts on a block boundary.
  if (bytes % VERITY_BLOCK !== 0) throw new DebianImageError(`${out}: mksquashfs wrote ${bytes} bytes, not 4 KiB aligned`);
  const r = await run(['veritysetup', 'format', out, out, `--hash-offset=${bytes}`, `--data-blocks=${bytes / VERITY_BLOCK}`], { timeoutMs: 600_000 });
  const m = /^Root hash:\s+([0-9a-f]{64})\s*$/m.exec(r.stdout.toString('utf8'));
  if (!m) throw new DebianImageError(`veritysetup format printed no root hash:\n${r.stdout.toString('utf8')}`);
  return { file: out, bytes, rootHash: m[1]! };
}

// ---- the layers above debootstrap's rootfs --------------------------------------------------------

/** Owners × modes of the permission matrix under /srv/modes (layer 3). */
const MATRIX_OWNERS = ['0:0', '1000:1000', '65534:65534', '0:1000', '1000:0'];
const MATRIX_MODES = ['0000', '0400', '0040', '0004', '0500', '0050', '0005', '0700', '0070', '0007', '0111', '0640', '0604', '0711', '0755', '0750', '0705', '0300', '1777', '4755', '2755'];

/**
 * Layer 2, what an image build's "remove docs, add a user" step does: whiteouts of files and of a
 * whole dir, an opaque dir (rm -rf + mkdir), copied-up files (/etc/passwd, /etc/group), a home
 * dir of uid 1000 with a 0600 file, a setuid-root copy of id(1), a device node.
 */
export const LAYER2 = `
rm -rf usr/share/man
rm -f etc/motd etc/issue.net
rm -rf usr/share/doc && mkdir usr/share/doc && echo 'docs dropped by layer 2' > usr/share/doc/README
echo atomfs-debian > etc/hostname
echo 'user:x:1000:1000:Test User:/home/user:/bin/sh' >> etc/passwd
echo 'user:x:1000:' >> etc/group
mkdir -p home/user && echo secret > home/user/private
chown -R 1000:1000 home/user && chmod 0750 home/user && chmod 0600 home/user/private
cp usr/bin/id usr/local/bin/suid-id && chown 0:0 usr/local/bin/suid-id && chmod 4755 usr/local/bin/suid-id
mknod -m 0666 dev/atomfs-zero c 1 5
`;

/**
 * Layer 3, changes on top of layer 2's: a whiteout of a file layer 2 added, a copy-up of a file
 * layer 2 added, an opaque dir over one of layer 1, metadata-only changes of layer-1 files
 * (owner 1000, mode 0600; a setgid program), a file whited out and recreated as a dir, and the
 * permission matrix: files (shell scripts) and dirs (with a file inside) of every owner × mode.
 */
export const LAYER3 = `
rm etc/hostname && echo atomfs-debian-l3 > etc/hostname
echo 'more secret' >> home/user/private
rm usr/share/doc/README
rm -rf var/cache/debconf && mkdir var/cache/debconf && echo empty > var/cache/debconf/note
chown 1000:1000 etc/issue && chmod 0600 etc/issue
chmod 2755 usr/bin/expiry
rm -f etc/debian_version && mkdir etc/debian_version && echo dir > etc/debian_version/now-a-dir
mkdir -p srv/modes
for o in ${MATRIX_OWNERS.join(' ')}; do
  for m in ${MATRIX_MODES.join(' ')}; do
    n=$(echo "$o" | tr : -)-$m
    printf '#!/bin/sh\\necho ran\\n' > srv/modes/f-$n
    mkdir srv/modes/d-$n && echo inner > srv/modes/d-$n/inner
    chown "$o" srv/modes/f-$n srv/modes/d-$n && chmod "$m" srv/modes/f-$n srv/modes/d-$n
  done
done
`;

/**
 * For each script: mount a writable overlayfs `lowerdir=<layers so far, top first>,upperdir=U,
 * workdir=W,userxattr`, run the script in it (sh -e), unmount; U is the next layer. Overlay
 * xattrs other than user.overlay.opaque (origin, impure) are removed from U, as stacker does.
 * Returns the new layer dirs, bottom-first.
 */
async function overlayRounds(work: string, base: string, scripts: readonly string[]): Promise<string[]> {
  mkdirSync(work, { recursive: true });
  const layers = [resolve(base)];
  const made: string[] = [];
  for (const [i, script] of scripts.entries()) {
    const upper = join(work, `upper${i + 2}`);
    const wd = join(work, `work${i + 2}`);
    const mp = join(work, `mnt${i + 2}`);
    for (const d of [upper, wd, mp]) mkdirSync(d);
    const o = `lowerdir=${[...layers].reverse().join(':')},upperdir=${upper},workdir=${wd},index=off,userxattr`;
    trackMount(mp);
    await run(['mount', '-t', 'overlay', 'overlay', '-o', o, mp]);
    try {
      await run(['sh', '-ec', script], { cwd: mp, timeoutMs: 300_000 });
    } finally {
      unmountSync(mp);
    }
    rmSync(wd, { recursive: true, force: true });
    rmSync(mp, { recursive: true, force: true });
    await stripOverlayXattrs(upper);
    layers.push(upper);
    made.push(upper);
  }
  return made;
}

async function stripOverlayXattrs(dir: string): Promise<void> {
  const r = await run(['getfattr', '-R', '-P', '-h', '--absolute-names', '-m', '^user\\.overlay\\.', dir], { allowFail: true });
  let file = '';
  for (const line of r.stdout.toString('utf8').split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice(8);
    // Paths in these layers are plain ASCII, so getfattr printed them unescaped.
    else if (line.startsWith('user.overlay.') && line.trim() !== 'user.overlay.opaque') await run(['setfattr', '-h', '-x', line.trim(), file]);
  }
}

// ---- the kernel's own mount of the layers (the reference) ------------------------------------------

export interface KernelStackOptions {
  /** Mount options of the overlay (the filesystem the container sees). */
  nosuid?: boolean;
  nodev?: boolean;
}

export interface KernelStack {
  /** The merged view: kernel overlayfs over the loop-mounted squashfs layers. */
  mountpoint: string;
  /** Unmount everything and remove the dirs (idempotent). */
  close(): void;
}

/**
 * Mount `layers` (BOTTOM-most first; squashfs with appended verity data, `squashfsBytes` each) as
 * the kernel does it without dm-verity: `mount -o loop,ro,sizelimit=N` per layer, then a read-only
 * overlayfs `lowerdir=top:…:bottom,userxattr` (as Go atomfs mounts layers) on `<dir>/merged`.
 * `dir` must exist and be empty-ish (layer mountpoints are made inside); with `stack` the teardown
 * is registered there too.
 */
export async function mountKernelStack(
  image: Pick<DebianImage, 'layers' | 'squashfsBytes'>,
  dir: string,
  opts: KernelStackOptions = {},
  stack?: CleanupStack,
): Promise<KernelStack> {
  const mounted: string[] = [];
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    const errors: string[] = [];
    for (const mp of mounted.reverse()) {
      try {
        unmountSync(mp);
        rmSync(mp, { recursive: true, force: true });
      } catch (e) {
        errors.push(e instanceof Error ? e.message : String(e));
      }
    }
    if (errors.length > 0) throw new DebianImageError(`kernel stack teardown: ${errors.join('; ')}`);
  };
  if (stack) stack.add(`kernel stack under ${dir}`, close);
  try {
    const lowers: string[] = [];
    for (const [i, layer] of image.layers.entries()) {
      const mp = join(dir, `layer${i + 1}`);
      mkdirSync(mp);
      trackMount(mp);
      trackBackingFile(layer);
      mounted.push(mp);
      // mount's loop option sets autoclear: the loop device goes with the umount.
      await run(['mount', '-t', 'squashfs', '-o', `loop,ro,sizelimit=${image.squashfsBytes[i]}`, layer, mp]);
      lowers.push(mp);
    }
    const merged = join(dir, 'merged');
    mkdirSync(merged);
    chmodSync(merged, 0o755);
    trackMount(merged);
    mounted.push(merged);
    const o = [`lowerdir=${[...lowers].reverse().join(':')}`, 'userxattr', 'index=off', 'xino=on', 'ro'];
    if (opts.nosuid) o.push('nosuid');
    if (opts.nodev) o.push('nodev');
    await run(['mount', '-t', 'overlay', 'overlay', '-o', o.join(','), merged]);
    return { mountpoint: merged, close };
  } catch (e) {
    try {
      close();
    } catch {
      // the mount error is the one to report
    }
    throw e;
  }
}
