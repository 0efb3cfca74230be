import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, fchmodSync, fchownSync, ftruncateSync, futimesSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, readFileSync, renameSync, statSync, symlinkSync, utimesSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { BlockPrefetch, prefetched } from './block-prefetch.js';
import type { FileInode, Inode } from './inode.js';
import { walkTree } from './paths.js';
import type { SquashFS } from './squashfs.js';

export interface ExtractOptions {
  /** Restore owners (default: when running as root, like unsquashfs). */
  owners?: boolean;
  /** Restore xattrs (default true; trusted.* and security.* need root). */
  xattrs?: boolean;
  /** Called for entries that could not be fully restored (e.g. devices as non-root). */
  onWarning?: (message: string) => void;
  /** Subtree of the image to extract (default the whole image). */
  subdir?: string;
  /**
   * Decode file blocks ahead on a second thread (default: when the image is a file of 16 MiB
   * or more and there are two cores). false keeps everything on the calling thread.
   */
  parallel?: boolean;
}

export interface ExtractResult {
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
export async function extract(fs: SquashFS, dest: string, options: ExtractOptions = {}): Promise<ExtractResult> {
  const isRoot = process.geteuid?.() === 0;
  const owners = options.owners ?? isRoot;
  const warn = options.onWarning ?? (() => {});
  const result: ExtractResult = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, specials: 0, bytes: 0 };
  const linked = new Map<number, Buffer>();
  const dirs: { path: Buffer; inode: Inode }[] = [];
  const xattrDump: string[] = [];
  const destBuf = Buffer.from(dest);
  mkdirSync(dest, { recursive: true });
  const made = creator(dest, owners);
  const prefetch = options.parallel === false ? undefined : BlockPrefetch.start(fs, options.subdir ?? '/');
  try {
    for (const e of walkTree(fs, options.subdir ?? '/')) {
      const target = e.depth === 0 ? destBuf : Buffer.concat([destBuf, relativeTail(e.pathBuffer, options.subdir)]);
      const inode = e.inode;
      if (inode.kind !== 'dir' && inode.nlink > 1) {
        const first = linked.get(inode.ref);
        if (first !== undefined) {
          linkSync(first, target);
          result.hardlinks++;
          continue;
        }
        linked.set(inode.ref, target);
      }
      switch (inode.kind) {
        case 'dir':
          if (e.depth > 0) mkdirSync(target);
          dirs.push({ path: target, inode });
          result.dirs++;
          break;
        case 'file':
          writeFile(fs, inode, target, made, prefetch);
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
          if (!ok) warn(`could not create ${inode.kind} ${e.path} (needs root)`);
          result.specials++;
        }
      }
      if (inode.kind !== 'dir' && inode.kind !== 'file') finish(inode, target, owners);
      if (options.xattrs !== false) {
        for (const x of fs.xattrList(inode)) {
          xattrDump.push(`# file: ${escapeName(target)}\n${x.name.toString('latin1')}=0x${x.value.toString('hex')}\n`);
        }
      }
    }
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
  for (const d of dirs.reverse()) finish(d.inode, d.path, owners);
  return result;
}

function relativeTail(pathBuffer: Buffer, subdir: string | undefined): Buffer {
  if (subdir === undefined || subdir === '/' || subdir === '') return pathBuffer;
  const prefix = Buffer.from(join('/', subdir));
  return pathBuffer.subarray(prefix.length);
}

/**
 * Write one file by descriptor: no path lookups after open, ftruncate only when the file ends in
 * a hole. (Async I/O with 16 files in flight measured 2x slower than this: the libuv round trip
 * per syscall costs more than the syscall.)
 */
function writeFile(fs: SquashFS, inode: FileInode, target: Buffer, c: Creator, prefetch: BlockPrefetch | undefined): void {
  const mode = inode.mode & 0o7777;
  // Created with its final mode (the fd stays writable whatever the mode says), so chmod is
  // only needed when the umask strips bits or a chown clears setuid/setgid. chown only when
  // the new file's owner differs. Of a 20,000-file extraction's system calls, fchown and fchmod
  // were 150 ms of 2 s.
  const fd = openSync(target, 'w', mode);
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
    const ahead = prefetch !== undefined && prefetched(inode);
    for (let i = 0; i < blocks; i++) {
      if (ahead) prefetch.next(fs, inode, i, (data) => put(i, data));
      else put(i, fs.readBlock(inode, i));
    }
    if (endsInHole) ftruncateSync(fd, inode.fileSize);
    const chown = c.owners && (inode.uid !== c.uid || inode.gid !== c.gid);
    if (chown) fchownSync(fd, inode.uid, inode.gid);
    // chmod after chown, which clears setuid/setgid.
    if ((mode & c.umask) !== 0 || (chown && (mode & 0o6000) !== 0)) fchmodSync(fd, mode);
    futimesSync(fd, inode.mtime, inode.mtime);
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

function creator(dest: string, owners: boolean): Creator {
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
function tmpName(dest: string): string {
  return join(dest, `.atomfs-extract-${process.pid}-${tmpCounter++}`);
}

function makeNode(inode: Inode, tmp: string, target: Buffer): boolean {
  let args: string[];
  if (inode.kind === 'fifo') args = ['mkfifo', tmp];
  else if (inode.kind === 'block' || inode.kind === 'char') {
    const major = (inode.rdev >> 8) & 0xfff;
    const minor = (inode.rdev & 0xff) | ((inode.rdev >>> 12) & 0xfff00);
    args = ['mknod', tmp, inode.kind === 'block' ? 'b' : 'c', String(major), String(minor)];
  } else return false;
  // Node has no mknod(2): the coreutils tools do it, under an ASCII name (argv strings are UTF-8).
  const r = spawnSync(args[0]!, args.slice(1), { stdio: 'ignore' });
  if (r.status !== 0) return false;
  renameSync(tmp, target);
  return true;
}

async function makeSocket(tmp: string, target: Buffer): Promise<void> {
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
