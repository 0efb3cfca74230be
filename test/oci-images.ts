/**
 * Test images in stacker's format, made with the real tools: each layer is a directory packed by
 * mksquashfs, with dm-verity data appended by `veritysetup format` (root hash into the layer
 * annotation), in an OCI layout written by @atomfs/oci's writeLayout.
 *
 * Upper layers are made the way stacker makes them: a WRITABLE kernel overlayfs (`userxattr`)
 * is mounted over the layers so far, a shell script changes files through it, and the upper dir
 * becomes the next layer — so every whiteout (char 0:0), opaque marker (user.overlay.opaque) and
 * copied-up file is the kernel's own, not our idea of one.
 */
import { chmodSync, closeSync, fstatSync, lstatSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeLayout, type WrittenImage } from '@atomfs/oci';
import {
  generateTree,
  makeTempDir,
  run,
  runSync,
  snapshotDir,
  trackBackingFile,
  trackMount,
  unmountSync,
  withLoopMount,
  withOverlayMount,
  type CleanupStack,
  type Snapshot,
} from './lib/index.js';

export class TestImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export const MEDIA_TYPE_CURRENT = 'application/vnd.stacker.image.layer.squashfs+zstd';
/** What stacker v1.0.x ("pre-erofs") wrote, with the annotation below. */
export const MEDIA_TYPE_LEGACY = 'application/vnd.stacker.image.layer.squashfs+zstd+verity';
export const ANNOTATION_LEGACY = 'io.stackeroci.stacker.squashfs_verity_root_hash';

const VERITY_BLOCK = 4096;

/** One packed layer: the squashfs file (+ verity data when `rootHash` is set). */
export interface LayerFile {
  file: string;
  /** Size of the squashfs part (= the verity hash offset when verity data follows). */
  squashfsBytes: number;
  rootHash?: string;
}

export interface PackOptions {
  /** Append dm-verity data with veritysetup (default true). */
  verity?: boolean;
}

/**
 * mksquashfs DIR OUT -comp zstd (what stacker runs), then — with verity — `veritysetup format OUT
 * OUT --hash-offset=SIZE --data-blocks=SIZE/4096`, as Go atomfs's AppendVerityData lays it out.
 */
export async function packLayer(dir: string, out: string, opts: PackOptions = {}): Promise<LayerFile> {
  await run(['mksquashfs', dir, out, '-noappend', '-quiet', '-no-progress', '-comp', 'zstd'], { timeoutMs: 300_000 });
  trackBackingFile(out);
  const size = statSync(out).size;
  // mksquashfs pads to 4 KiB (unless -nopad): the verity data must start on a block boundary.
  if (size % VERITY_BLOCK !== 0) throw new TestImageError(`${out}: mksquashfs output of ${size} bytes is not 4 KiB aligned`);
  if (opts.verity === false) return { file: out, squashfsBytes: size };
  const r = await run(['veritysetup', 'format', out, out, `--hash-offset=${size}`, `--data-blocks=${size / VERITY_BLOCK}`]);
  const m = /^Root hash:\s+([0-9a-f]{64})\s*$/m.exec(r.stdout.toString('utf8'));
  if (!m) throw new TestImageError(`veritysetup format printed no root hash:\n${r.stdout.toString('utf8')}`);
  return { file: out, squashfsBytes: size, rootHash: m[1]! };
}

export interface WriteImageOptions {
  /** Leave the root hash annotations out (what `stacker --no-squashfs-verity` produces). */
  noRootHash?: boolean;
  /** Use stacker v1.0.x's media type and annotation name. */
  legacy?: boolean;
  /** Replace the root hash of layer i (bottom-first) by this value. */
  rootHashOverride?: ReadonlyMap<number, string>;
}

/** Write tag `tag` into the layout at `ociDir` with `layers` (BOTTOM-most first). */
export async function writeImage(ociDir: string, tag: string, layers: readonly LayerFile[], opts: WriteImageOptions = {}): Promise<WrittenImage> {
  const written = await writeLayout(ociDir, {
    tag,
    layers: layers.map((l, i) => {
      const root = opts.rootHashOverride?.get(i) ?? (opts.noRootHash ? undefined : l.rootHash);
      return {
        file: l.file,
        mediaType: opts.legacy ? MEDIA_TYPE_LEGACY : MEDIA_TYPE_CURRENT,
        ...(root !== undefined ? { rootHash: root } : {}),
        ...(opts.legacy ? { annotationName: ANNOTATION_LEGACY } : {}),
      };
    }),
  });
  for (const l of written.layers) trackBackingFile(l.path);
  return written;
}

/** Run a shell script (sh -e) with `cwd`; output in the error when it fails. */
export async function sh(cwd: string, script: string): Promise<void> {
  await run(['sh', '-ec', script], { cwd });
}

/**
 * Stacker-style layer directories: `base` is the bottom layer; for each script, a writable
 * overlayfs `lowerdir=<layers so far, top first>,upperdir=U,workdir=W,userxattr` is mounted,
 * the script runs inside it, it is unmounted and U is the next layer. Like stacker
 * (pkg/overlay stripOverlayAttrs), overlay xattrs other than `user.overlay.opaque` are removed
 * from the finished upper dir. With a single `lowers` dir (the base) returns base + the new
 * layers, BOTTOM-most first; with a list (an existing stack) returns only the new layers.
 */
export async function overlayRounds(work: string, lowers: string | readonly string[], scripts: readonly string[], name = 'upper'): Promise<string[]> {
  const layers = typeof lowers === 'string' ? [resolve(lowers)] : lowers.map((l) => resolve(l));
  const made: string[] = [];
  for (const [i, script] of scripts.entries()) {
    const upper = join(work, `${name}${i + 1}`);
    const wd = join(work, `${name}${i + 1}.work`);
    const mp = join(work, `${name}${i + 1}.mnt`);
    for (const d of [upper, wd, mp]) mkdirSync(d);
    const opts = `lowerdir=${[...layers].reverse().join(':')},upperdir=${upper},workdir=${wd},index=off,userxattr`;
    trackMount(mp);
    await run(['mount', '-t', 'overlay', 'overlay', '-o', opts, mp]);
    try {
      await sh(mp, script);
    } finally {
      unmountSync(mp);
    }
    runSync(['rm', '-rf', wd, mp]);
    await stripOverlayXattrs(upper);
    layers.push(upper);
    made.push(upper);
  }
  return typeof lowers === 'string' ? layers : made;
}

/** Remove user.overlay.* xattrs except opaque (origin, impure, ...), as stacker does before packing. */
async function stripOverlayXattrs(dir: string): Promise<void> {
  const r = await run(['getfattr', '-R', '-P', '-h', '--absolute-names', '-m', '^user\\.overlay\\.', dir], { allowFail: true });
  let file = '';
  const removals: Array<{ file: string; name: string }> = [];
  for (const line of r.stdout.toString('utf8').split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice(8);
    else if (line.startsWith('user.overlay.') && line.trim() !== 'user.overlay.opaque') removals.push({ file, name: line.trim() });
  }
  // Our temp paths are plain ASCII, so getfattr printed them unescaped.
  for (const x of removals) await run(['setfattr', '-h', '-x', x.name, x.file]);
}

/** Overwrite `bytes.length` bytes of `file` at `offset` in place, like `dd conv=notrunc` (same inode). */
export function patchFile(file: string, offset: number, bytes: Uint8Array): void {
  const fd = openSync(file, 'r+');
  try {
    const size = fstatSync(fd).size;
    if (offset + bytes.length > size) throw new TestImageError(`patch ${offset}+${bytes.length} is past the end of ${file} (${size})`);
    if (writeSync(fd, bytes, 0, bytes.length, offset) !== bytes.length) throw new TestImageError(`short write to ${file}`);
  } finally {
    closeSync(fd);
  }
}

/** A work dir whose path every user can traverse (mkdtemp makes 0700). */
export function makeSharedTempDir(prefix: string, stack: CleanupStack): string {
  const d = makeTempDir(prefix, stack);
  chmodSync(d, 0o755);
  return d;
}

// ---- the 3-layer image of the merged-tree tests --------------------------------------------------

/**
 * Round 1 (layer 2): whiteouts of files and of a whole dir, opaque dirs (rm -rf && mkdir),
 * appends (copy-up), metadata-only changes, new files/dirs/symlinks/hard links/fifo/device,
 * dir ↔ file replacements, an xattr added to a lower file.
 */
export const ROUND1 = `
rm files/r7
rm -rf xattrs/same-set && mkdir xattrs/same-set && echo fresh > xattrs/same-set/new
echo appended >> files/r333
chmod 0600 files/r4095
chown 1234:4321 owners/u0-g0
mkdir -p newdir/sub && echo n > newdir/sub/f
ln -s ../files/r2 newdir/link
echo h > newdir/h1 && ln newdir/h1 newdir/h2
ln hard/a/one hard/one-up
setfattr -n user.added -v yes files/r2
rm -rf links && mkdir links && ln -s nowhere links/only
touch -d @1650000000 deep
rm perms/setuid
echo x > special/newfile
mkfifo newfifo
mknod newdev c 1 5
rm -rf many
rm -rf empty-dir && echo file > empty-dir
rm files/r4096 && mkdir files/r4096 && echo c > files/r4096/c
`;

/**
 * Round 2 (layer 3): changes on top of round 1's changes: delete a file copied up in layer 2,
 * opaque over a merged dir, break a hard link, recreate a whited-out dir, chmod/chown of entries
 * from both lower layers.
 */
export const ROUND2 = `
rm files/r333
rm -rf xattrs && mkdir xattrs && echo again > xattrs/again
rm newdir/h1
echo x >> newdir/h2
echo more >> files/r999999
chown -h 99:99 links/only
mv newdir/sub newdir/sub2
rmdir mtimes/dir-zero
mkdir empty2
setfattr -n user.late -v 1 newdir
mkdir many && echo back > many/one
ln -s /abs/target abs-link
chmod 4755 perms/setgid
rm hard/b/two
echo new-in-l3 > files/r4096/d
`;

/** Facts every 3-layer image must show (checked on the kernel's own merged view too). */
export function assertRoundsApplied(merged: ReadonlyMap<string, { type: string; nlink: number; uid: number }>): string[] {
  const problems: string[] = [];
  const want = (cond: boolean, what: string): void => {
    if (!cond) problems.push(what);
  };
  want(!merged.has('/files/r7'), 'files/r7 whited out');
  want(!merged.has('/files/r333'), 'files/r333 whited out in layer 3');
  want(merged.has('/xattrs/again') && !merged.has('/xattrs/small'), 'xattrs opaque in layer 3');
  want(merged.get('/many/one')?.type === 'file' && !merged.has('/many/e0001'), 'many recreated over its whiteout');
  want(merged.get('/empty-dir')?.type === 'file', 'empty-dir replaced by a file');
  want(merged.get('/files/r4096')?.type === 'dir' && merged.has('/files/r4096/d'), 'files/r4096 replaced by a dir, merged');
  want(merged.has('/newdir/sub2/f') && !merged.has('/newdir/sub'), 'newdir/sub renamed');
  want(merged.get('/newdir/h2')?.nlink === 1, 'hard link broken');
  want(merged.get('/owners/u0-g0')?.uid === 1234, 'chown copied up');
  return problems;
}

/** A char 0:0 device (an overlay whiteout) — the layers must carry the kernel's own. */
export function isWhiteout(path: string): boolean {
  const st = lstatSync(path);
  return st.isCharacterDevice() && st.rdev === 0;
}

// ---- the 3-layer test image --------------------------------------------------------------------

export interface ThreeLayerImage {
  /** OCI layout with tags `tri` (root hashes) and `tri-noverity` (none). */
  oci: string;
  /** Layer dirs, bottom-first (base tree, then the kernel's upper dirs of ROUND1 and ROUND2). */
  dirs: string[];
  /** Bottom-first; squashfs + verity data. */
  verityLayers: LayerFile[];
  /** Bottom-first; plain squashfs. */
  plainLayers: LayerFile[];
}

/** generateTree (no medium files) + ROUND1 + ROUND2 through kernel overlayfs, packed two ways. */
export async function buildThreeLayerImage(work: string): Promise<ThreeLayerImage> {
  const base = join(work, 'base');
  await generateTree(base, { medium: false });
  const layersDir = join(work, 'layers');
  mkdirSync(layersDir);
  const dirs = await overlayRounds(layersDir, base, [ROUND1, ROUND2]);
  // The upper layers hold the kernel's own markers.
  if (!isWhiteout(join(dirs[1]!, 'files/r7')) || !isWhiteout(join(dirs[2]!, 'files/r333'))) {
    throw new TestImageError('the overlay rounds did not produce kernel whiteouts');
  }
  const sq = join(work, 'sq');
  mkdirSync(sq);
  const verityLayers: LayerFile[] = [];
  const plainLayers: LayerFile[] = [];
  for (const [i, d] of dirs.entries()) {
    verityLayers.push(await packLayer(d, join(sq, `L${i + 1}.verity.sqfs`)));
    plainLayers.push(await packLayer(d, join(sq, `L${i + 1}.sqfs`), { verity: false }));
  }
  const oci = join(work, 'oci');
  await writeImage(oci, 'tri', verityLayers);
  await writeImage(oci, 'tri-noverity', plainLayers, { noRootHash: true });
  return { oci, dirs, verityLayers, plainLayers };
}

/**
 * The ground truth: the kernel's read-only overlayfs (`userxattr`) over the layer `files`
 * (BOTTOM-first), each loop-mounted by the kernel's squashfs (or erofs, as `fsTypes` says).
 */
export async function kernelMergedSnapshot(files: readonly string[], fsTypes?: readonly ('squashfs' | 'erofs')[]): Promise<Snapshot> {
  const mps: string[] = [];
  const nest = async (i: number): Promise<Snapshot> => {
    if (i === files.length) return withOverlayMount([...mps].reverse(), (mp) => snapshotDir(mp), { userxattr: true, extraOptions: ['ro'] });
    return withLoopMount(
      files[i]!,
      (mp) => {
        mps.push(mp);
        return nest(i + 1);
      },
      { fsType: fsTypes?.[i] ?? 'squashfs' },
    );
  };
  return nest(0);
}
