import type { ImageTree, TreeNode } from './image-tree.js';
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
  const ancestors = new Set<number>();
  function* visit(node: N, pathBuffer: Buffer, depth: number): Generator<WalkEntry<N>> {
    yield { path: pathBuffer.toString('utf8'), pathBuffer, node, attr: tree.attr(node), depth };
    if (node.kind !== 'dir') return;
    const ref = tree.ref(node);
    if (ancestors.has(ref)) throw tree.corrupt(`directory cycle at ${pathBuffer.toString()}`);
    ancestors.add(ref);
    const prefix = pathBuffer.length === 1 ? pathBuffer : Buffer.concat([pathBuffer, SLASH]);
    for (const e of tree.readdir(node)) yield* visit(tree.node(e.ref), Buffer.concat([prefix, e.name]), depth + 1);
    ancestors.delete(ref);
  }
  yield* visit(top, topPath, 0);
}

const SLASH = Buffer.from('/');
