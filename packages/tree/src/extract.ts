import { spawnSync } from 'node:child_process';
import { closeSync, fchmodSync, fchownSync, ftruncateSync, futimesSync, linkSync, mkdirSync, openSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeAttr, NodeKind } from './attr.js';
import { readContent, type FileContent } from './file-content.js';
import { creator, escapeName, finish, makeNode, makeSocket, mtimeSeconds, type Creator } from './host.js';
import type { ImageTree, TreeNode } from './image-tree.js';
import { FsError } from './fs-error.js';
import { components, pathBytes, resolvePath, type PathLike } from './path.js';
import { walkTree } from './walk.js';

export interface ExtractOptions<N> {
  /** Restore owners (default: when running as root, as unsquashfs and fsck.erofs do). */
  owners?: boolean;
  /** Restore xattrs (default true; trusted.* and security.* need root). */
  xattrs?: boolean;
  /** Called for entries that could not be fully restored (e.g. devices as non-root). */
  onWarning?: (message: string) => void;
  /**
   * Called for each entry the destination refused (a symlink target or name too long for
   * Linux, no space, …) as it is skipped; the extraction carries on and lists them all in
   * `ExtractResult.skipped`. A damaged image still fails the whole extraction.
   */
  onSkip?: (skip: ExtractSkip) => void;
  /** Subtree of the image to extract (default the whole image); it must be a directory. */
  subdir?: PathLike;
  /**
   * Called at the first entry, then at most every `progressIntervalMs` (default 200), and at the
   * end, with the entries walked so far and the image's inode count (the total of a whole-image
   * extraction; hard links count once).
   */
  onProgress?: (entries: number, inodes: number) => void;
  progressIntervalMs?: number;
  /** Where regular files' bytes come from (default: the tree's readInto). Closed at the end. */
  content?: FileContent<N>;
}

/** An entry that could not be created (or whose directory metadata could not be restored). */
export interface ExtractSkip {
  /** Path inside the image (raw bytes: names need not be UTF-8). */
  path: Buffer;
  kind: NodeKind;
  /** The error the destination gave (a node:fs error with its `code`). The entries below a directory that could not be created go with it, unlisted. */
  error: NodeJS.ErrnoException;
}

export interface ExtractResult {
  /** Entries not extracted, in walk order; the extraction went on past them, as unsquashfs does. */
  skipped: ExtractSkip[];
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  specials: number;
  bytes: number;
}

/** One extraction's state: what was made, what is left to finish, what was lost. */
interface Run<N extends TreeNode> {
  tree: ImageTree<N>;
  dest: string;
  made: Creator;
  content: FileContent<N>;
  result: ExtractResult;
  warn: (message: string) => void;
  /** Hard-linked nodes by ref: the first name made (or attempted) for them. */
  linked: Map<number, Buffer>;
  /** Hard-linked nodes whose first name could not be created: the next name gets the content itself. */
  lostLinks: Set<number>;
  dirs: { target: Buffer; image: Buffer; kind: NodeKind; attr: NodeAttr }[];
  xattrDump: string[];
}

/**
 * Extract the image (or `subdir` of it) into `dest` (created if missing; it should be empty),
 * restoring what `unsquashfs -d` and `fsck.erofs --extract` restore: types, contents (holes stay
 * holes), modes incl. setuid/setgid/sticky, owners when root, mtimes, xattrs, device numbers,
 * hard links.
 */
export async function extract<N extends TreeNode>(tree: ImageTree<N>, dest: string | Buffer, options: ExtractOptions<N> = {}): Promise<ExtractResult> {
  const start = options.subdir ?? '/';
  const content = options.content ?? readContent(tree);
  try {
    // Not followed: the walk starts at the entry itself, as find(1) does.
    if (resolvePath(tree, start, false).kind !== 'dir') throw new FsError('ENOTDIR', 'extract', pathBytes(start).toString());
    mkdirSync(dest, { recursive: true });
    const run: Run<N> = {
      tree,
      dest: dest.toString(),
      made: creator(dest, options.owners ?? process.geteuid?.() === 0),
      content,
      result: { skipped: [], files: 0, dirs: 0, symlinks: 0, hardlinks: 0, specials: 0, bytes: 0 },
      warn: options.onWarning ?? (() => {}),
      linked: new Map(),
      lostLinks: new Set(),
      dirs: [],
      xattrDump: [],
    };
    await extractEntries(run, Buffer.from(dest), start, options);
    restoreXattrs(run);
    finishDirs(run, options);
    return run.result;
  } finally {
    await content.close();
  }
}

async function extractEntries<N extends TreeNode>(run: Run<N>, destBuf: Buffer, start: PathLike, options: ExtractOptions<N>): Promise<void> {
  const { tree } = run;
  /** Image path of a directory that could not be created: everything below it is skipped too. */
  let lostDir: Buffer | undefined;
  const startLength = components(start).reduce((n, c) => n + 1 + c.length, 0);
  const progress = options.onProgress;
  const every = options.progressIntervalMs ?? 200;
  let entries = 0;
  let nextReport = Date.now() + every;
  for (const e of walkTree(tree, start)) {
    entries++;
    if (progress !== undefined && (entries === 1 || Date.now() >= nextReport)) {
      progress(entries, tree.inodeCount);
      nextReport = Date.now() + every;
    }
    const target = e.depth === 0 ? destBuf : Buffer.concat([destBuf, e.pathBuffer.subarray(startLength)]);
    const node = e.node;
    const ref = tree.ref(node);
    if (lostDir !== undefined && isBelow(e.pathBuffer, lostDir)) {
      if (node.kind !== 'dir' && !run.linked.has(ref)) {
        if (node.nlink > 1) {
          run.linked.set(ref, target);
          run.lostLinks.add(ref);
        }
        if (node.kind === 'file') run.content.skip(node);
      }
      continue;
    }
    lostDir = undefined;
    try {
      if (await create(run, node, ref, e.attr, target, e.depth, e.pathBuffer)) continue;
    } catch (err) {
      if (!isDestinationError(err)) throw err;
      skip(run, options, e.pathBuffer, node.kind, err);
      if (node.kind === 'dir') lostDir = e.pathBuffer;
      else if (node.nlink > 1 && run.linked.get(ref) === target) run.lostLinks.add(ref);
      continue;
    }
    if (options.xattrs !== false) {
      for (const x of tree.xattrs(node)) run.xattrDump.push(`# file: ${escapeName(target)}\n${x.name.toString('latin1')}=0x${x.value.toString('hex')}\n`);
    }
  }
  progress?.(entries, tree.inodeCount);
}

/** Create one entry; true when there is nothing more to do for it (a hard link, a refused node). */
async function create<N extends TreeNode>(run: Run<N>, node: N, ref: number, attr: NodeAttr, target: Buffer, depth: number, image: Buffer): Promise<boolean> {
  const { result } = run;
  if (node.kind !== 'dir' && node.nlink > 1) {
    const first = run.linked.get(ref);
    if (first !== undefined && !run.lostLinks.has(ref)) {
      linkSync(first, target);
      result.hardlinks++;
      return true;
    }
    run.linked.set(ref, target);
  }
  switch (node.kind) {
    case 'dir':
      if (depth > 0) mkdirSync(target);
      run.dirs.push({ target, image, kind: node.kind, attr });
      result.dirs++;
      break;
    case 'file':
      writeFile(run, node, attr, target);
      result.bytes += attr.size;
      result.files++;
      break;
    case 'symlink':
      symlinkSync(run.tree.readlink(node), target);
      result.symlinks++;
      break;
    case 'socket':
      await makeSocket(tmpName(run.dest), target);
      result.specials++;
      break;
    default:
      if (!makeNode(node.kind, attr.rdev, tmpName(run.dest), target)) {
        run.warn(`could not create ${node.kind} ${image.toString()} (needs root)`);
        return true;
      }
      result.specials++;
  }
  if (node.kind !== 'dir' && node.kind !== 'file') finish(node.kind, attr, target, run.made.owners);
  run.lostLinks.delete(ref);
  return false;
}

/**
 * Write one file by descriptor: created with its final mode (the fd stays writable whatever the
 * mode says), so chmod only when the umask strips bits or a chown clears setuid/setgid, and
 * chown only when the owner differs: fchown and fchmod of every file were a visible share of an
 * extraction of many small files.
 */
function writeFile<N extends TreeNode>(run: Run<N>, file: N, a: NodeAttr, target: Buffer): void {
  const mode = a.mode & 0o7777;
  let fd: number;
  try {
    fd = openSync(target, 'w', mode);
  } catch (err) {
    run.content.skip(file);
    throw err;
  }
  try {
    if (run.content.write(file, a.size, fd)) ftruncateSync(fd, a.size);
    const c = run.made;
    const chown = c.owners && (a.uid !== c.uid || a.gid !== c.gid);
    if (chown) fchownSync(fd, a.uid, a.gid);
    // chmod after chown, which clears setuid/setgid.
    if ((mode & c.umask) !== 0 || (chown && (mode & 0o6000) !== 0)) fchmodSync(fd, mode);
    const t = mtimeSeconds(a);
    futimesSync(fd, t, t);
  } finally {
    closeSync(fd);
  }
}

function restoreXattrs<N extends TreeNode>(run: Run<N>): void {
  if (run.xattrDump.length === 0) return;
  // One setfattr process restores every xattr (Node has no xattr syscalls).
  const r = spawnSync('setfattr', ['-h', '--restore=-'], { input: run.xattrDump.join('\n'), encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) run.warn(`setfattr failed: ${r.error?.message ?? r.stderr.trim()}`);
}

/**
 * Directories last and deepest first: creating children changes a directory's mtime, and a
 * read-only mode would stop us creating them.
 */
function finishDirs<N extends TreeNode>(run: Run<N>, options: ExtractOptions<N>): void {
  for (const d of run.dirs.reverse()) {
    try {
      finish(d.kind, d.attr, d.target, run.made.owners);
    } catch (err) {
      if (!isDestinationError(err)) throw err;
      skip(run, options, d.image, d.kind, err);
    }
  }
}

function skip<N extends TreeNode>(run: Run<N>, options: ExtractOptions<N>, path: Buffer, kind: NodeKind, error: NodeJS.ErrnoException): void {
  const s: ExtractSkip = { path, kind, error };
  run.result.skipped.push(s);
  options.onSkip?.(s);
}

/** An error of the destination filesystem (node:fs's, with a numeric errno), not of the image. */
export function isDestinationError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).errno === 'number' && typeof (err as NodeJS.ErrnoException).code === 'string';
}

/** Whether image path `path` lies below directory `dir`. */
function isBelow(path: Buffer, dir: Buffer): boolean {
  if (dir.length === 1) return path.length > 1; // below the root
  return path.length > dir.length && path[dir.length] === 0x2f && path.subarray(0, dir.length).equals(dir);
}

let tmpCounter = 0;
/** An ASCII name to create special files under before renaming them to their (any-bytes) name. */
function tmpName(dest: string): string {
  return join(dest, `.atomfs-extract-${process.pid}-${tmpCounter++}`);
}
