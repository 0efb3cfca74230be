import type { DirEntry } from './directory.js';
import type { Erofs, InodeAttr } from './erofs.js';
import { CorruptImageError, FsError } from './errors.js';
import type { ErofsInode } from './inode.js';

export type PathLike = string | Buffer;

/** Symlinks followed while resolving one path (Linux's MAXSYMLINKS). */
const MAX_SYMLINKS = 40;

function components(path: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i === path.length || path[i] === 0x2f) {
      if (i > start) out.push(path.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

/**
 * Resolve a path inside the image as the kernel would on a mount of it: absolute and relative
 * paths both start at the image's root, ".." stops at the root, symlinks are followed (the last
 * component only when `followLast`), at most 40 of them.
 */
export function resolvePath(fs: Erofs, path: PathLike, followLast: boolean): ErofsInode {
  const text = path.toString();
  const raw = typeof path === 'string' ? Buffer.from(path) : path;
  const stack: ErofsInode[] = [fs.root()];
  const pending = components(raw).reverse();
  let links = 0;
  while (pending.length > 0) {
    const name = pending.pop()!;
    const dir = stack[stack.length - 1]!;
    if (name.length === 1 && name[0] === 0x2e) continue;
    if (dir.kind !== 'dir') throw new FsError('ENOTDIR', 'stat', text);
    if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) {
      if (stack.length > 1) stack.pop();
      continue;
    }
    const child = fs.lookup(dir, name);
    if (child === undefined) throw new FsError('ENOENT', 'stat', text);
    if (child.kind === 'symlink' && (pending.length > 0 || followLast)) {
      if (++links > MAX_SYMLINKS) throw new FsError('ELOOP', 'stat', text);
      const target = fs.readlink(child);
      if (target[0] === 0x2f) stack.length = 1;
      pending.push(...components(target).reverse());
      continue;
    }
    stack.push(child);
  }
  return stack[stack.length - 1]!;
}

export interface WalkEntry {
  /** Path from the root, "/" for the root itself. */
  path: Buffer;
  inode: ErofsInode;
}

/** Every entry below `start` (itself first), depth first in name order. */
export function* walkTree(fs: Erofs, start: PathLike = '/'): Generator<WalkEntry> {
  const top = resolvePath(fs, start, true);
  const base = typeof start === 'string' ? Buffer.from(start) : start;
  const prefix = components(base);
  const rootPath = Buffer.from('/' + prefix.map((c) => c.toString('latin1')).join('/'), 'latin1');
  yield { path: rootPath, inode: top };
  const stack: { path: Buffer; nid: number; entries: DirEntry[]; i: number }[] = [];
  if (top.kind === 'dir') stack.push({ path: rootPath, nid: top.nid, entries: fs.readdir(top), i: 0 });
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.i >= frame.entries.length) {
      stack.pop();
      continue;
    }
    const e = frame.entries[frame.i++]!;
    const path = frame.path.length === 1 ? Buffer.concat([frame.path, e.name]) : Buffer.concat([frame.path, Buffer.from('/'), e.name]);
    const inode = fs.inode(e.nid);
    yield { path, inode };
    if (inode.kind === 'dir') {
      // A directory that contains itself (a damaged image) would make the walk endless.
      if (stack.some((f) => f.nid === inode.nid)) throw new CorruptImageError(`directory inode ${inode.nid} is its own ancestor (at ${path.toString()})`, inode.pos);
      stack.push({ path, nid: inode.nid, entries: fs.readdir(inode), i: 0 });
    }
  }
}

/** node:fs-shaped calls on paths of the image (synchronous). */
export class PathApi {
  constructor(readonly fs: Erofs) {}

  stat(path: PathLike): InodeAttr {
    return this.fs.attr(resolvePath(this.fs, path, true));
  }
  lstat(path: PathLike): InodeAttr {
    return this.fs.attr(resolvePath(this.fs, path, false));
  }
  readdir(path: PathLike): Buffer[] {
    const dir = resolvePath(this.fs, path, true);
    if (dir.kind !== 'dir') throw new FsError('ENOTDIR', 'scandir', path.toString());
    return this.fs.readdir(dir).map((e) => e.name);
  }
  readlink(path: PathLike): Buffer {
    const node = resolvePath(this.fs, path, false);
    if (node.kind !== 'symlink') throw new FsError('EINVAL', 'readlink', path.toString());
    return this.fs.readlink(node);
  }
  readFile(path: PathLike): Buffer {
    const node = resolvePath(this.fs, path, true);
    if (node.kind === 'dir') throw new FsError('EISDIR', 'read', path.toString());
    return this.fs.read(node, 0, node.size);
  }
}
