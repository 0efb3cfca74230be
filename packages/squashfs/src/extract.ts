import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, fchmodSync, fchownSync, ftruncateSync, futimesSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, readFileSync, renameSync, statSync, symlinkSync, utimesSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { BlockPrefetch, prefetched } from './block-prefetch.js';
import { SquashfsError } from './errors.js';
import { deviceNumbers, type FileInode, type Inode } from './inode.js';
import { walkTree } from './paths.js';
import type { SquashFS } from './squashfs.js';

export interface ExtractOptions {
  /** Restore owners (default: when running as root, like unsquashfs). */
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
  /** Subtree of the image to extract (default the whole image). */
  subdir?: string | Buffer;
  /**
   * Called at the first entry, then at most every `progressIntervalMs` (default 200), and at the
   * end, with the entries walked so far and the image's inode count (the total of a whole-image
   * extraction; hard links count once).
   */
  onProgress?: (entries: number, inodes: number) => void;
  progressIntervalMs?: number;
  /**
   * Decode file blocks ahead on a second thread (default: when the image is a file of 16 MiB
   * or more and there are two cores). false keeps everything on the calling thread.
   */
  parallel?: boolean;
}

/** An entry that could not be created (or whose directory metadata could not be restored). */
export interface ExtractSkip {
  /** Path inside the image (raw bytes: names need not be UTF-8). */
  path: Buffer;
  kind: Inode['kind'];
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

/**
 * Extract the image into `dest` (which must not exist or be an empty directory), restoring what
 * unsquashfs -d restores: types, contents (holes stay holes), modes incl. setuid/setgid/sticky,
 * owners when root, mtimes, xattrs, device numbers, hard links.
 */
export async function extract(fs: SquashFS, dest: string | Buffer, options: ExtractOptions = {}): Promise<ExtractResult> {
  const isRoot = process.geteuid?.() === 0;
  const owners = options.owners ?? isRoot;
  const warn = options.onWarning ?? (() => {});
  const result: ExtractResult = { skipped: [], files: 0, dirs: 0, symlinks: 0, hardlinks: 0, specials: 0, bytes: 0 };
  const linked = new Map<number, Buffer>();
  /**
   * Hard-linked inodes whose first name could not be created: the next name gets the content
   * itself (read here: the helper thread took their blocks for the first name).
   */
  const lostLinks = new Set<number>();
  const dirs: { path: Buffer; image: Buffer; inode: Inode }[] = [];
  const skip = (path: Buffer, inode: Inode, error: NodeJS.ErrnoException): void => {
    const s: ExtractSkip = { path, kind: inode.kind, error };
    result.skipped.push(s);
    options.onSkip?.(s);
  };
  /** Image path of a directory that could not be created: everything below it is skipped too. */
  let lostDir: Buffer | undefined;
  const xattrDump: string[] = [];
  const destBuf = typeof dest === 'string' ? Buffer.from(dest) : dest;
  mkdirSync(dest, { recursive: true });
  const made = creator(dest, owners);
  const prefetch = options.parallel === false ? undefined : BlockPrefetch.start(fs, options.subdir ?? '/');
  const progress = options.onProgress;
  const every = options.progressIntervalMs ?? 200;
  let entries = 0;
  let nextReport = Date.now() + every;
  try {
    for (const e of walkTree(fs, options.subdir ?? '/')) {
      entries++;
      if (progress !== undefined && (entries === 1 || Date.now() >= nextReport)) {
        progress(entries, fs.superblock.inodeCount);
        nextReport = Date.now() + every;
      }
      const target = e.depth === 0 ? destBuf : Buffer.concat([destBuf, relativeTail(e.pathBuffer, options.subdir)]);
      const inode = e.inode;
      if (lostDir !== undefined && isBelow(e.pathBuffer, lostDir)) {
        if (inode.kind !== 'dir' && !linked.has(inode.ref)) {
          if (inode.nlink > 1) {
            linked.set(inode.ref, target);
            lostLinks.add(inode.ref);
          }
          // The helper thread decodes these blocks anyway: take them off its sequence.
          if (prefetch !== undefined && prefetched(inode)) drain(fs, inode, 0, prefetch);
        }
        continue;
      }
      lostDir = undefined;
      try {
        if (inode.kind !== 'dir' && inode.nlink > 1) {
          const first = linked.get(inode.ref);
          if (first !== undefined && !lostLinks.has(inode.ref)) {
            linkSync(first, target);
            result.hardlinks++;
            continue;
          }
          linked.set(inode.ref, target);
        }
        switch (inode.kind) {
          case 'dir':
            if (e.depth > 0) mkdirSync(target);
            dirs.push({ path: target, image: e.pathBuffer, inode });
            result.dirs++;
            break;
          case 'file':
            writeFile(fs, inode, target, made, lostLinks.delete(inode.ref) ? undefined : prefetch);
            result.bytes += inode.fileSize;
            result.files++;
            break;
          case 'symlink':
            symlinkSync(inode.target, target);
            result.symlinks++;
            break;
          case 'socket':
            await makeSocket(tmpName(dest), target);
            result.specials++;
            break;
          default: {
            const ok = makeNode(inode, tmpName(dest), target);
            if (!ok) {
              warn(`could not create ${inode.kind} ${e.path} (needs root)`);
              continue;
            }
            result.specials++;
          }
        }
        if (inode.kind !== 'dir' && inode.kind !== 'file') finish(inode, target, owners);
        lostLinks.delete(inode.ref);
      } catch (err) {
        if (!isDestinationError(err)) throw err;
        skip(e.pathBuffer, inode, err);
        if (inode.kind === 'dir') lostDir = e.pathBuffer;
        else if (inode.nlink > 1 && linked.get(inode.ref) === target) lostLinks.add(inode.ref);
        continue;
      }
      if (options.xattrs !== false) {
        for (const x of fs.xattrList(inode)) {
          xattrDump.push(`# file: ${escapeName(target)}\n${x.name.toString('latin1')}=0x${x.value.toString('hex')}\n`);
        }
      }
    }
    progress?.(entries, fs.superblock.inodeCount);
  } finally {
    await prefetch?.stop();
  }
  if (xattrDump.length > 0) {
    // One setfattr process restores every xattr (Node has no xattr syscalls).
    const r = spawnSync('setfattr', ['-h', '--restore=-'], { input: xattrDump.join('\n'), encoding: 'utf8' });
    if (r.error !== undefined || r.status !== 0) warn(`setfattr failed: ${r.error?.message ?? r.stderr.trim()}`);
  }
  // Directories last and deepest first: creating children changes a directory's mtime, and a
  // read-only mode would stop us creating them.
  for (const d of dirs.reverse()) {
    try {
      finish(d.inode, d.path, owners);
    } catch (err) {
      if (!isDestinationError(err)) throw err;
      skip(d.image, d.inode, err);
    }
  }
  return result;
}

/** An error of the destination filesystem (node:fs, with an errno code), not of the image. */
function isDestinationError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && !(err instanceof SquashfsError) && typeof (err as NodeJS.ErrnoException).code === 'string';
}

/** Whether image path `path` lies below directory `dir`. */
function isBelow(path: Buffer, dir: Buffer): boolean {
  if (dir.length === 1) return path.length > 1; // below the root
  return path.length > dir.length && path[dir.length] === 0x2f && path.subarray(0, dir.length).equals(dir);
}

/** Take blocks `from`.. of a file the extraction gave up on off the helper's sequence, keeping both threads in step. */
function drain(fs: SquashFS, inode: FileInode, from: number, prefetch: BlockPrefetch): void {
  const blocks = Math.ceil(inode.fileSize / fs.superblock.blockSize);
  for (let i = from; i < blocks; i++) prefetch.next(fs, inode, i, () => {});
}

function relativeTail(pathBuffer: Buffer, subdir: string | Buffer | undefined): Buffer {
  if (subdir === undefined) return pathBuffer;
  // walkTree names entries from the subdir's own components ("/a/b" for "a//b/"): as many bytes.
  const parts = (typeof subdir === 'string' ? Buffer.from(subdir) : subdir).toString('latin1').split('/').filter((c) => c !== '');
  if (parts.length === 0) return pathBuffer;
  return pathBuffer.subarray(parts.reduce((n, c) => n + 1 + c.length, 0));
}

/**
 * Write one file by descriptor: no path lookups after open, ftruncate only when the file ends in
 * a hole. (Async I/O with many files in flight measured slower than this: the libuv round trip
 * per syscall costs more than the syscall.)
 */
function writeFile(fs: SquashFS, inode: FileInode, target: Buffer, c: Creator, prefetch: BlockPrefetch | undefined): void {
  const mode = inode.mode & 0o7777;
  // Created with its final mode (the fd stays writable whatever the mode says), so chmod is
  // only needed when the umask strips bits or a chown clears setuid/setgid. chown only when
  // the new file's owner differs: fchown and fchmod of every file were a visible share of an
  // extraction of many small files.
  const ahead = prefetch !== undefined && prefetched(inode);
  /** Blocks taken off the helper's sequence so far (the rest are drained if this file fails). */
  let taken = 0;
  let fd: number;
  try {
    fd = openSync(target, 'w', mode);
  } catch (err) {
    if (ahead) drain(fs, inode, 0, prefetch);
    throw err;
  }
  try {
    const bs = fs.superblock.blockSize;
    const blocks = Math.ceil(inode.fileSize / bs);
    let endsInHole = false;
    const put = (i: number, data: Buffer): void => {
      // Skip all-zero blocks so sparse files stay sparse.
      endsInHole = isZero(data);
      if (endsInHole) return;
      let done = 0;
      while (done < data.length) done += writeSync(fd, data, done, data.length - done, i * bs + done);
    };
    for (let i = 0; i < blocks; i++) {
      if (ahead) {
        taken = i + 1;
        prefetch.next(fs, inode, i, (data) => put(i, data));
      } else put(i, fs.readBlock(inode, i));
    }
    if (endsInHole) ftruncateSync(fd, inode.fileSize);
    const chown = c.owners && (inode.uid !== c.uid || inode.gid !== c.gid);
    if (chown) fchownSync(fd, inode.uid, inode.gid);
    // chmod after chown, which clears setuid/setgid.
    if ((mode & c.umask) !== 0 || (chown && (mode & 0o6000) !== 0)) fchmodSync(fd, mode);
    futimesSync(fd, inode.mtime, inode.mtime);
  } catch (err) {
    if (ahead && isDestinationError(err)) drain(fs, inode, taken, prefetch);
    throw err;
  } finally {
    closeSync(fd);
  }
}

/** What a file created by this process gets without being told: its owner, group and umask. */
interface Creator {
  owners: boolean;
  uid: number;
  /** -1 when unknown (the destination's set-group-ID bit hands its group down): always chown. */
  gid: number;
  umask: number;
}

function creator(dest: string | Buffer, owners: boolean): Creator {
  const setgidDest = (statSync(dest).mode & 0o2000) !== 0;
  return { owners, uid: process.geteuid?.() ?? -1, gid: setgidDest ? -1 : (process.getegid?.() ?? -1), umask: readUmask() };
}

/** The process umask from /proc (process.umask() without an argument is deprecated); all bits when unknown, so every file gets its chmod. */
function readUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
    if (m) return parseInt(m[1]!, 8);
  } catch {
    // no /proc: fall through
  }
  return 0o7777;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i + 8 <= b.length; i += 8) if (b.readBigUInt64LE(i) !== 0n) return false;
  for (let i = b.length & ~7; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

let tmpCounter = 0;
/** An ASCII name to create special files under before renaming them to their (any-bytes) name. */
function tmpName(dest: string | Buffer): string {
  return join(dest.toString(), `.atomfs-extract-${process.pid}-${tmpCounter++}`);
}

function makeNode(inode: Inode, tmp: string, target: Buffer): boolean {
  let args: string[];
  if (inode.kind === 'fifo') args = ['mkfifo', tmp];
  else if (inode.kind === 'block' || inode.kind === 'char') {
    const { major, minor } = deviceNumbers(inode.rdev);
    args = ['mknod', tmp, inode.kind === 'block' ? 'b' : 'c', String(major), String(minor)];
  } else return false;
  // Node has no mknod(2): the coreutils tools do it, under an ASCII name (argv strings are UTF-8).
  const r = spawnSync(args[0]!, args.slice(1), { stdio: 'ignore' });
  if (r.status !== 0) return false;
  renameSync(tmp, target);
  return true;
}

/** Create a unix socket file at `target` (via the ASCII temporary name `tmp`), as extraction needs. */
export async function makeSocket(tmp: string, target: Buffer): Promise<void> {
  // bind(2) on a unix socket creates the socket file. Node unlinks it when the server closes,
  // so keep a second link to it made before closing.
  const keep = `${tmp}.keep`;
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(tmp, () => {
      linkSync(tmp, keep);
      server.close(() => resolve());
    });
  });
  renameSync(keep, target);
}

function finish(inode: Inode, target: Buffer, owners: boolean): void {
  const isLink = inode.kind === 'symlink';
  if (owners) {
    if (isLink) lchownSync(target, inode.uid, inode.gid);
    else chownSync(target, inode.uid, inode.gid);
  }
  // chmod after chown: chown clears setuid/setgid bits.
  if (!isLink) chmodSync(target, inode.mode & 0o7777);
  if (isLink) lutimesSync(target, inode.mtime, inode.mtime);
  else utimesSync(target, inode.mtime, inode.mtime);
}

/** getfattr/setfattr dump format escapes: backslash, newline and control bytes as \ooo. */
function escapeName(name: Buffer): string {
  let s = '';
  for (const c of name) {
    if (c === 0x5c || c < 0x20 || c >= 0x7f) s += '\\' + c.toString(8).padStart(3, '0');
    else s += String.fromCharCode(c);
  }
  return s;
}
