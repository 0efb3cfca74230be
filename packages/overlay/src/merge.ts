/**
 * The merge rules of kernel overlayfs, for one directory: which layer provides a name and which
 * layers' directories of that name merge into one. Lookup and listing apply the same rules, so a
 * listed name is always found by lookup with the same outcome:
 *
 * - Layers are walked top first, within the parent directory's stack only (its opaque cut-off
 *   already applied).
 * - The first layer holding the name decides: a whiteout there means "no such name"; a non-directory
 *   is the entry and nothing below matters; a directory starts a merge.
 * - A merging directory takes the same-named directories of the following layers until one is
 *   opaque, a layer holds a non-directory or a whiteout of that name (the kernel stops there and
 *   ignores it), or a layer holds `.wh.NAME` (that layer's own entry still counts).
 */
import type { Layer, NodeAttr } from './layer.js';
import { isDir, isOpaqueDir, isWhiteout, whiteoutTarget, isBadName, hasWhPrefix, WH_PREFIX } from './markers.js';

/** Where a merged directory comes from: flattened (layerIndex, key) pairs, top first. */
export type DirStack = readonly number[];

export interface MergeContext {
  readonly layers: readonly Layer<unknown>[];
  /** The layer node for a key (cached by the caller). */
  node(layerIndex: number, key: number): unknown;
}

export interface MergedChild {
  name: Buffer;
  /** Topmost layer providing the entry, its node and attributes there. */
  layerIndex: number;
  node: unknown;
  attr: NodeAttr;
  /** For directories: every layer's directory merged into it (length 2 ⇒ not merged). */
  stack: number[] | undefined;
}

function hasWhiteoutEntry(layer: Layer<unknown>, dir: unknown, name: Buffer): boolean {
  return layer.lookup(dir, Buffer.concat([WH_PREFIX, name])) !== undefined;
}

/** The entry `name` of the directory `stack`, or undefined when the merged view has none. */
export function lookupChild(ctx: MergeContext, stack: DirStack, name: Buffer): MergedChild | undefined {
  const depth = stack.length / 2;
  let child: MergedChild | undefined;
  for (let i = 0; i < depth; i++) {
    const layerIndex = stack[2 * i]!;
    const layer = ctx.layers[layerIndex]!;
    const dir = ctx.node(layerIndex, stack[2 * i + 1]!);
    const more = i + 1 < depth;
    const node = layer.lookup(dir, name);
    if (node !== undefined) {
      const attr = layer.getattr(node);
      if (child === undefined) {
        if (isWhiteout(layer, node, attr)) return undefined;
        const dirEntry = isDir(attr);
        child = { name, layerIndex, node, attr, stack: dirEntry ? [layerIndex, layer.key(node)] : undefined };
        if (!dirEntry) return child;
      } else {
        if (!isDir(attr)) break;
        child.stack!.push(layerIndex, layer.key(node));
      }
      if (more && isOpaqueDir(layer, node)) break;
    }
    if (more && hasWhiteoutEntry(layer, dir, name)) break;
  }
  return child;
}

interface Pending extends MergedChild {
  /** Lower layers may still add to this directory. */
  open: boolean;
  /** Layer and node of the last directory merged in, whose opacity decides whether to go on. */
  lastLayer: number;
  lastNode: unknown;
}

/** Every entry of the merged directory `stack`, sorted by name bytes, whiteouts removed. */
export function mergeListing(ctx: MergeContext, stack: DirStack): MergedChild[] {
  return (stack.length === 2 ? singleLayerListing(ctx, stack[0]!, stack[1]!) : undefined) ?? mergeLayers(ctx, stack);
}

/**
 * mergeListing of a directory that exists in one layer only (every directory of a one-layer
 * image, most of any image): nothing to merge, so no name map, no latin1 key per name and no
 * intermediate entry per name (those were a large share of a FUSE server's time in a cold walk,
 * mostly garbage collection). `.wh.` names hide only lower layers, so here they are just
 * left out. Undefined when a name occurs twice (a malformed directory): the general merge decides
 * those, so both paths give the same answer.
 */
function singleLayerListing(ctx: MergeContext, layerIndex: number, key: number): MergedChild[] | undefined {
  const layer = ctx.layers[layerIndex]!;
  const dir = ctx.node(layerIndex, key);
  const out: MergedChild[] = [];
  let sorted = true;
  for (const { name, node } of layer.readdir(dir)) {
    if (isBadName(name) || hasWhPrefix(name)) continue;
    const attr = layer.getattr(node);
    const dirEntry = isDir(attr);
    const prev = out.length > 0 ? out[out.length - 1]!.name : undefined;
    if (prev !== undefined && Buffer.compare(prev, name) >= 0) sorted = false;
    out.push({ name, layerIndex, node, attr, stack: dirEntry ? [layerIndex, layer.key(node)] : undefined });
  }
  // squashfs lists names sorted already: sort only what is not, stably (first one first).
  if (!sorted) out.sort((a, b) => Buffer.compare(a.name, b.name));
  for (let i = 1; i < out.length; i++) if (out[i - 1]!.name.equals(out[i]!.name)) return undefined;
  // Whiteouts (only after the duplicate check: a whiteout and an entry of one name is a duplicate).
  let w = 0;
  for (let i = 0; i < out.length; i++) {
    const c = out[i]!;
    if (!isWhiteout(layer, c.node, c.attr)) out[w++] = c;
  }
  out.length = w;
  return out;
}

function mergeLayers(ctx: MergeContext, stack: DirStack): MergedChild[] {
  // latin1 maps bytes 1:1 to string code units, so any name (UTF-8 or not) is a distinct key.
  const decided = new Map<string, Pending | null>();
  for (let i = 0; i < stack.length / 2; i++) {
    const layerIndex = stack[2 * i]!;
    const layer = ctx.layers[layerIndex]!;
    const dir = ctx.node(layerIndex, stack[2 * i + 1]!);
    // `.wh.NAME` hides NAME only in the layers below, so apply them after this layer's entries.
    const hiddenBelow: string[] = [];
    for (const { name, node } of layer.readdir(dir)) {
      if (isBadName(name)) continue;
      if (hasWhPrefix(name)) {
        const target = whiteoutTarget(name);
        if (target !== undefined) hiddenBelow.push(target.toString('latin1'));
        continue;
      }
      const k = name.toString('latin1');
      const prev = decided.get(k);
      if (prev === null) continue;
      if (prev === undefined) {
        const attr = layer.getattr(node);
        if (isWhiteout(layer, node, attr)) {
          decided.set(k, null);
          continue;
        }
        const dirEntry = isDir(attr);
        decided.set(k, {
          name,
          layerIndex,
          node,
          attr,
          stack: dirEntry ? [layerIndex, layer.key(node)] : undefined,
          open: dirEntry,
          lastLayer: layerIndex,
          lastNode: node,
        });
        continue;
      }
      if (!prev.open) continue;
      // Opacity is only asked when a lower layer really has the name: most directories never need it.
      if (isOpaqueDir(ctx.layers[prev.lastLayer]!, prev.lastNode)) {
        prev.open = false;
        continue;
      }
      if (!isDir(layer.getattr(node))) {
        prev.open = false;
        continue;
      }
      prev.stack!.push(layerIndex, layer.key(node));
      prev.lastLayer = layerIndex;
      prev.lastNode = node;
    }
    for (const k of hiddenBelow) {
      const prev = decided.get(k);
      if (prev === undefined) decided.set(k, null);
      else if (prev !== null) prev.open = false;
    }
  }
  const out: MergedChild[] = [];
  for (const p of decided.values()) {
    if (p !== null) out.push({ name: p.name, layerIndex: p.layerIndex, node: p.node, attr: p.attr, stack: p.stack });
  }
  out.sort((a, b) => Buffer.compare(a.name, b.name));
  return out;
}
