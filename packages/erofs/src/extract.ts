import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, ftruncateSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, renameSync, symlinkSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { deviceNumbers, makeSocket } from '@atomfs/squashfs';
import type { Erofs } from './erofs.js';
import { ErofsError } from './errors.js';
import type { ErofsInode } from './inode.js';
import { resolvePath, walkTree } from './paths.js';

export interface ExtractOptions {
  /** Restore owners (default: when running as root, as fsck.erofs --extract does). */
  owners?: boolean;
  /** Restore xattrs (default true; trusted.* and security.* need root). */
  xattrs?: boolean;
  /** Subtree of the image to extract (default the whole image). */
  subdir?: string | Buffer;
  /** Entries that could not be fully restored (devices as non-root, xattrs refused). */
  onWarning?: (message: string) => void;
}

export interface ExtractResult {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  specials: number;
  bytes: number;
}

/** Data is copied in pieces of this size: a file never sits in memory whole. */
const CHUNK = 1 << 20;

/**
 * Extract the image (or `subdir` of it) into `dest` (created if missing): contents (runs of
 * zeros become holes), modes, owners when root, mtimes, xattrs, device numbers, hard links.
 * Directories get their mode and mtime after their contents are written.
 */
export async function extract(fs: Erofs, dest: string | Buffer, options: ExtractOptions = {}): Promise<ExtractResult> {
  const owners = options.owners ?? process.getuid?.() === 0;
  const warn = options.onWarning ?? (() => undefined);
  const start = options.subdir ?? '/';
  if (resolvePath(fs, start, true).kind !== 'dir') throw new ErofsError(`${start.toString()} is not a directory in the image`);
  const result: ExtractResult = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, specials: 0, bytes: 0 };
  const destBuf = Buffer.from(dest);
  const linked = new Map<number, Buffer>();
  const dirsToFinish: { inode: ErofsInode; target: Buffer }[] = [];
  const xattrDump: string[] = [];
  mkdirSync(dest, { recursive: true });
  // Paths below the start, relative to it ("/x"): the walk's first path is the start itself.
  let rootLen = -1;
  for (const { path, inode } of walkTree(fs, start)) {
    if (rootLen < 0) rootLen = path.length === 1 ? 0 : path.length;
    const rel = rootLen === 0 && path.length === 1 ? Buffer.alloc(0) : path.subarray(rootLen);
    const target = Buffer.concat([destBuf, rel]);
    if (inode.kind === 'dir') {
      if (rel.length > 0) mkdirSync(target);
      dirsToFinish.push({ inode, target });
      result.dirs++;
    } else {
      const earlier = inode.nlink > 1 ? linked.get(inode.nid) : undefined;
      if (earlier !== undefined) {
        linkSync(earlier, target);
        result.hardlinks++;
        continue;
      }
      if (inode.nlink > 1) linked.set(inode.nid, target);
      if (inode.kind === 'file') {
        result.bytes += writeFile(fs, inode, target);
        result.files++;
      } else if (inode.kind === 'symlink') {
        symlinkSync(fs.readlink(inode), target);
        result.symlinks++;
      } else {
        const tmp = join(dest.toString(), `.atomfs-extract-${process.pid}-${result.specials}`);
        if (inode.kind === 'socket') await makeSocket(tmp, target);
        else if (!makeNode(fs, inode, tmp, target)) {
          warn(`${path.toString()}: could not create the ${inode.kind}`);
          continue;
        }
        result.specials++;
      }
      finish(inode, target, owners);
    }
    if (options.xattrs !== false) {
      for (const x of fs.xattrs(inode)) xattrDump.push(`# file: ${escapeName(target)}\n${x.name.toString('latin1')}=0x${x.value.toString('hex')}\n`);
    }
  }
  if (xattrDump.length > 0) {
    // One setfattr process restores every xattr (Node has no xattr syscalls).
    const r = spawnSync('setfattr', ['-h', '--restore=-'], { input: xattrDump.join('\n'), encoding: 'utf8' });
    if (r.status !== 0) warn(`setfattr: ${(r.stderr ?? r.error?.message ?? '').trim().split('\n')[0]}`);
  }
  // Deepest first, so setting a directory's mtime is not undone by work inside it.
  for (const { inode, target } of dirsToFinish.reverse()) finish(inode, target, owners);
  return result;
}

function writeFile(fs: Erofs, inode: ErofsInode, target: Buffer): number {
  const fd = openSync(target, 'w', 0o600);
  try {
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(1, inode.size)));
    for (let pos = 0; pos < inode.size; pos += CHUNK) {
      const n = fs.readInto(inode, pos, CHUNK, buf);
      const piece = buf.subarray(0, n);
      if (!isZero(piece)) writeSync(fd, piece, 0, n, pos);
    }
    ftruncateSync(fd, inode.size);
  } finally {
    closeSync(fd);
  }
  return inode.size;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function makeNode(fs: Erofs, inode: ErofsInode, tmp: string, target: Buffer): boolean {
  const rdev = fs.attr(inode).rdev;
  const { major, minor } = deviceNumbers(rdev);
  const args = inode.kind === 'fifo' ? ['mkfifo', tmp] : ['mknod', tmp, inode.kind === 'block' ? 'b' : 'c', String(major), String(minor)];
  // Node has no mknod(2): the coreutils tools do it, under an ASCII name, renamed after.
  const r = spawnSync(args[0]!, args.slice(1), { stdio: 'ignore' });
  if (r.status !== 0) return false;
  renameSync(tmp, target);
  return true;
}


function finish(inode: ErofsInode, target: Buffer, owners: boolean): void {
  const isLink = inode.kind === 'symlink';
  if (owners) {
    if (isLink) lchownSync(target, inode.uid, inode.gid);
    else chownSync(target, inode.uid, inode.gid);
  }
  // chmod after chown: chown clears setuid/setgid.
  if (!isLink) chmodSync(target, inode.mode & 0o7777);
  const t = inode.mtime + inode.mtimeNsec / 1e9;
  if (isLink) lutimesSync(target, t, t);
  else utimesSync(target, t, t);
}

/** getfattr/setfattr dump format: backslash, newline and control bytes as \ooo. */
function escapeName(name: Buffer): string {
  let s = '';
  for (const c of name) s += c === 0x5c || c < 0x20 || c >= 0x7f ? '\\' + c.toString(8).padStart(3, '0') : String.fromCharCode(c);
  return s;
}
