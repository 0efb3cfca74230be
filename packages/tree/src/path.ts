import { FsError } from './fs-error.js';
import type { ImageTree, TreeNode } from './image-tree.js';

/** Like Linux: at most 40 symlinks followed while resolving one path. */
const MAX_SYMLINKS = 40;

/**
 * A path inside the image, as node:fs takes paths: a string, the raw bytes (Buffer or
 * Uint8Array: names need not be UTF-8), or a `file:` URL (its pathname, percent-decoded).
 */
export type PathLike = string | Buffer | Uint8Array | URL;

/** The raw bytes of a path argument; anything else is refused with a TypeError, as node:fs does. */
export function pathBytes(path: PathLike): Buffer {
  if (typeof path === 'string') return Buffer.from(path);
  if (Buffer.isBuffer(path)) return path;
  if (path instanceof Uint8Array) return Buffer.from(path.buffer, path.byteOffset, path.byteLength);
  if (path instanceof URL) {
    if (path.protocol !== 'file:') throw new TypeError(`The URL must be of scheme file (got ${path.protocol})`);
    return Buffer.from(decodeURIComponent(path.pathname));
  }
  throw new TypeError(`The "path" argument must be of type string, Buffer, Uint8Array or URL (got ${typeof path})`);
}

/** The non-empty components of a path, as raw bytes ("a//b/" gives a, b). */
export function components(path: PathLike): Buffer[] {
  const b = pathBytes(path);
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= b.length; i++) {
    if (i === b.length || b[i] === 0x2f) {
      if (i > start) out.push(b.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

/**
 * Resolve a path inside the image as the kernel would on a mount of it used as a root: absolute
 * and relative paths both start at the image's root, absolute symlink targets too, ".." at the
 * root stays there, every component but the last must be a directory, and symlinks are followed
 * (the last component only when `followLast`), at most 40 of them.
 */
export function resolvePath<N extends TreeNode>(tree: ImageTree<N>, path: PathLike, followLast: boolean): N {
  const display = pathBytes(path).toString();
  const stack: N[] = [tree.root()];
  const todo = components(path).reverse();
  let links = 0;
  while (todo.length > 0) {
    const name = todo.pop()!;
    const cur = stack[stack.length - 1]!;
    if (cur.kind !== 'dir') throw new FsError('ENOTDIR', 'stat', display);
    if (name.length === 1 && name[0] === 0x2e) continue;
    if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) {
      if (stack.length > 1) stack.pop();
      continue;
    }
    const child = tree.lookup(cur, name);
    if (child === undefined) throw new FsError('ENOENT', 'stat', display);
    if (child.kind === 'symlink' && (todo.length > 0 || followLast)) {
      if (++links > MAX_SYMLINKS) throw new FsError('ELOOP', 'stat', display);
      const target = tree.readlink(child);
      if (target[0] === 0x2f) stack.length = 1;
      todo.push(...components(target).reverse());
      continue;
    }
    stack.push(child);
  }
  return stack[stack.length - 1]!;
}
