import type { ImageTree, TreeEntry, TreeNode } from './image-tree.js';
import { components, resolvePath, type PathLike } from './path.js';
import type { NodeAttr } from './attr.js';

export interface WalkEntry<N> {
  /** Path inside the image, "/" for the root (decoded as UTF-8). */
  path: string;
  /** The same path as raw bytes (names need not be UTF-8). */
  pathBuffer: Buffer;
  node: N;
  attr: NodeAttr;
  /** 0 for the start of the walk. */
  depth: number;
}

/**
 * Every entry below `start` (itself first, a symlink there not followed), depth first in
 * directory order, named from the start's own components ("a//b/" walks as "/a/b"). A directory
 * that contains one of its own ancestors (a damaged image) raises the tree's corrupt-image error
 * instead of looping.
 */
export function* walkTree<N extends TreeNode>(tree: ImageTree<N>, start: PathLike = '/'): Generator<WalkEntry<N>> {
  const top = resolvePath(tree, start, false);
  const base = components(start);
  const topPath = base.length === 0 ? Buffer.from('/') : Buffer.concat(base.flatMap((c) => [SLASH, c]));
  yield entry(tree, top, topPath, 0);
  if (top.kind !== 'dir') return;
  // An explicit stack, not recursion: a deep tree costs neither call stack nor a chain of
  // delegating generators per entry.
  const stack: Frame[] = [{ ref: tree.ref(top), prefix: dirPrefix(topPath), entries: tree.readdir(top), next: 0 }];
  const ancestors = new Set<number>([stack[0]!.ref]);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.next === frame.entries.length) {
      ancestors.delete(frame.ref);
      stack.pop();
      continue;
    }
    const e = frame.entries[frame.next++]!;
    const node = tree.node(e.ref);
    const pathBuffer = Buffer.concat([frame.prefix, e.name]);
    yield entry(tree, node, pathBuffer, stack.length);
    if (node.kind !== 'dir') continue;
    const ref = tree.ref(node);
    if (ancestors.has(ref)) throw tree.corrupt(`directory cycle at ${pathBuffer.toString()}`);
    ancestors.add(ref);
    stack.push({ ref, prefix: dirPrefix(pathBuffer), entries: tree.readdir(node), next: 0 });
  }
}

/** A directory being walked: its entries and the next one to visit. */
interface Frame {
  ref: number;
  /** Its path with a trailing slash. */
  prefix: Buffer;
  entries: readonly TreeEntry[];
  next: number;
}

function entry<N extends TreeNode>(tree: ImageTree<N>, node: N, pathBuffer: Buffer, depth: number): WalkEntry<N> {
  return { path: pathBuffer.toString('utf8'), pathBuffer, node, attr: tree.attr(node), depth };
}

function dirPrefix(path: Buffer): Buffer {
  return path.length === 1 ? path : Buffer.concat([path, SLASH]);
}

const SLASH = Buffer.from('/');
