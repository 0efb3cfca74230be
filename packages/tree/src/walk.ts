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
  for (const v of visit(tree, start, true)) {
    yield { path: v.pathBuffer.toString('utf8'), pathBuffer: v.pathBuffer, node: v.node, attr: tree.attr(v.node), depth: v.depth };
  }
}

/**
 * The nodes walkTree visits, in the same order, without paths or attributes (for a thread that
 * only follows the walk, as extraction's block prefetch does).
 */
export function* walkNodes<N extends TreeNode>(tree: ImageTree<N>, start: PathLike = '/'): Generator<N> {
  for (const v of visit(tree, start, false)) yield v.node;
}

/** One step of the walk (one object, updated in place: read it before the next step). */
interface Visit<N> {
  node: N;
  /** Its path, when the walk is `named` (else empty). */
  pathBuffer: Buffer;
  depth: number;
}

/**
 * The walk itself, on an explicit stack rather than recursion: a deep tree costs neither call
 * stack nor a chain of delegating generators per entry.
 */
function* visit<N extends TreeNode>(tree: ImageTree<N>, start: PathLike, named: boolean): Generator<Visit<N>> {
  const top = resolvePath(tree, start, false);
  const base = named ? components(start) : [];
  const v: Visit<N> = { node: top, pathBuffer: base.length === 0 ? SLASH : Buffer.concat(base.flatMap((c) => [SLASH, c])), depth: 0 };
  const stack: Frame[] = [];
  const ancestors = new Set<number>();
  const enter = (dir: N, path: Buffer): void => {
    const ref = tree.ref(dir);
    if (ancestors.has(ref)) throw tree.corrupt(`directory cycle at ${path.toString()}`);
    ancestors.add(ref);
    const prefix = !named ? EMPTY : path.length === 1 ? path : Buffer.concat([path, SLASH]);
    stack.push({ ref, prefix, entries: tree.readdir(dir), next: 0 });
  };
  if (top.kind === 'dir') enter(top, v.pathBuffer);
  yield v;
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.next === frame.entries.length) {
      ancestors.delete(frame.ref);
      stack.pop();
      continue;
    }
    const e = frame.entries[frame.next++]!;
    v.node = tree.node(e.ref);
    v.pathBuffer = named ? Buffer.concat([frame.prefix, e.name]) : e.name;
    v.depth = stack.length;
    if (v.node.kind === 'dir') enter(v.node, v.pathBuffer);
    yield v;
  }
}

/** A directory being walked: its entries and the next one to visit. */
interface Frame {
  ref: number;
  /** Its path with a trailing slash (empty when the walk does not name entries). */
  prefix: Buffer;
  entries: readonly TreeEntry[];
  next: number;
}

const SLASH = Buffer.from('/');
const EMPTY = Buffer.alloc(0);
