/**
 * The merged, read-only view of N layers, as kernel overlayfs shows lowerdir=L0:L1:…:Ln-1
 * (L0 on top) with index=off, redirect_dir/metacopy not followed, but our own inode numbers.
 *
 * Node ids (see node-id.ts) name an entry by its topmost (layer, key). Files, symlinks and
 * devices need nothing else, so any Overlay instance over the same layers (another worker
 * thread, another process) serves getattr/read/readlink/xattrs for them. A directory also needs
 * its stack: the directories of lower layers merged into it, found while walking down to it.
 * Stacks are recorded when lookup or readdir hands the id out and kept until forget(id); a
 * directory id this instance never handed out answers ESTALE.
 */
import { isDir, isPrivateXattr, hasWhPrefix, isBadName, S_IFMT, S_IFLNK, S_IFREG } from './markers.js';
import { LayerSetupError, OverlayError, printableName } from './errors.js';
import { Lru } from './lru.js';
import { MAX_LAYERS, packId, unpackId } from './node-id.js';
import { lookupChild, mergeListing, type DirStack, type MergeContext, type MergedChild } from './merge.js';
import type { Layer, NodeAttr } from './layer.js';

/**
 * Attributes of one merged entry, as lstat(2) on the overlay would report them (the layer's, as
 * overlayfs shows the real inode's, but for ino and a merged directory's nlink). Frozen.
 */
export type OverlayAttr = Readonly<Omit<NodeAttr, 'ino'>> & {
  /** Our inode number: the node id itself, so hard links agree and distinct entries differ. */
  readonly ino: bigint;
};

export interface OverlayDirEntry {
  readonly name: Buffer;
  readonly id: bigint;
  readonly attr: OverlayAttr;
}

export interface OverlayOptions {
  /** Budget for cached merged directory listings, in (estimated) bytes. Default 16 MiB. */
  listingCacheBytes?: number;
  /** How many layer nodes to keep resolved from their keys. Default 4096. */
  nodeCacheEntries?: number;
}

interface CachedListing {
  entries: readonly OverlayDirEntry[];
  /** Stack of each directory entry (undefined for non-directories), to re-record on reuse. */
  stacks: readonly (DirStack | undefined)[];
}

/** Rough heap cost of one listing entry: the entry, its attr object, name and stack. */
const ENTRY_OVERHEAD = 240;

export class Overlay {
  readonly rootId: bigint;
  private readonly layers: readonly Layer<unknown>[];
  private readonly ctx: MergeContext;
  /** Directory id → the id of its parent directory (same lifetime as `dirs`). */
  private readonly parents = new Map<bigint, bigint>();
  /** Directory id → stack. Only grows through ids handed out; shrinks through forget(). */
  private readonly dirs = new Map<bigint, DirStack>();
  private readonly listings: Lru<bigint, CachedListing>;
  /** Per layer: key → node, so hot directories and files skip fromKey (an inode parse). */
  private readonly nodes: Lru<number, unknown>[];

  constructor(layers: readonly Layer<unknown>[], options: OverlayOptions = {}) {
    if (layers.length === 0) throw new LayerSetupError('an overlay needs at least one layer');
    if (layers.length > MAX_LAYERS) throw new LayerSetupError(`at most ${MAX_LAYERS} layers, got ${layers.length}`);
    this.layers = [...layers];
    this.listings = new Lru(options.listingCacheBytes ?? 16 * 1024 * 1024);
    const perLayer = Math.max(64, Math.ceil((options.nodeCacheEntries ?? 4096) / layers.length));
    this.nodes = this.layers.map(() => new Lru<number, unknown>(perLayer));
    this.ctx = { layers: this.layers, node: (layerIndex, key) => this.node(layerIndex, key) };
    // The roots always merge: the kernel ignores opacity of a layer's root directory.
    const stack: number[] = [];
    this.layers.forEach((layer, i) => {
      const root = layer.root();
      if (!isDir(layer.getattr(root))) throw new LayerSetupError(`layer ${i}: root is not a directory`);
      const key = layer.key(root);
      this.nodes[i]!.set(key, root);
      stack.push(i, key);
    });
    this.rootId = packId(0, stack[1]!);
    this.dirs.set(this.rootId, stack);
  }

  /** The root entry (its id is `rootId`). */
  root(): OverlayDirEntry {
    return { name: Buffer.alloc(0), id: this.rootId, attr: this.getattr(this.rootId) };
  }

  /**
   * The entry `name` of directory `dirId`, or undefined when there is none (a negative lookup is
   * common enough not to cost an exception). Throws ENOTDIR/ESTALE for a bad `dirId` and EINVAL
   * for a name that cannot be a directory entry ("", ".", "..", containing '/' or NUL).
   */
  lookup(dirId: bigint, name: Buffer): OverlayDirEntry | undefined {
    const stack = this.dirStack(dirId, 'lookup');
    if (isBadName(name)) throw new OverlayError('EINVAL', 'lookup', printableName(name));
    if (hasWhPrefix(name)) return undefined;
    const cached = this.listings.get(dirId);
    if (cached !== undefined) {
      const i = findName(cached.entries, name);
      if (i < 0) return undefined;
      const st = cached.stacks[i];
      const entry = cached.entries[i]!;
      if (st !== undefined && !this.dirs.has(entry.id)) this.addDir(entry.id, st, dirId);
      return entry;
    }
    const child = lookupChild(this.ctx, stack, name);
    return child === undefined ? undefined : this.publish(child, dirId);
  }

  getattr(id: bigint): OverlayAttr {
    const stack = this.dirs.get(id);
    if (stack !== undefined) {
      const layerIndex = stack[0]!;
      return toAttr(id, this.layers[layerIndex]!.getattr(this.node(layerIndex, stack[1]!)), stack.length > 2);
    }
    const leaf = this.leaf(id, 'getattr');
    return toAttr(id, leaf.attr, false);
  }

  /**
   * Whether a directory merges directories of more than one layer. (overlayfs looks up each entry
   * of such a directory as it lists it, for its inode number: an entry its layer refuses to look
   * up is left out of the listing.)
   */
  isMerged(id: bigint): boolean {
    const stack = this.dirs.get(id);
    return stack !== undefined && stack.length > 2;
  }

  /** Entries of a merged directory, sorted by name bytes, without "." and "..". Do not mutate. */
  readdir(dirId: bigint): readonly OverlayDirEntry[] {
    const stack = this.dirStack(dirId, 'readdir');
    let cached = this.listings.get(dirId);
    if (cached === undefined) {
      const children = mergeListing(this.ctx, stack);
      const entries: OverlayDirEntry[] = [];
      const stacks: (DirStack | undefined)[] = [];
      let cost = ENTRY_OVERHEAD;
      for (const c of children) {
        // Own copy of the name: a layer's name may be a view into a whole metadata block, which
        // the cache would otherwise keep alive beyond its byte budget.
        c.name = Buffer.from(c.name);
        entries.push(this.entryOf(c));
        stacks.push(c.stack);
        cost += ENTRY_OVERHEAD + c.name.length + (c.stack === undefined ? 0 : 16 + 8 * c.stack.length);
      }
      cached = { entries, stacks };
      this.listings.set(dirId, cached, cost);
    }
    // Readdirplus hands these ids to the kernel without a lookup: they must resolve from now on.
    cached.stacks.forEach((st, i) => {
      if (st !== undefined) {
        const id = cached.entries[i]!.id;
        if (!this.dirs.has(id)) this.addDir(id, st, dirId);
      }
    });
    return cached.entries;
  }

  readlink(id: bigint): Buffer {
    if (this.dirs.has(id)) throw new OverlayError('EINVAL', 'readlink', idText(id));
    const leaf = this.leaf(id, 'readlink');
    if ((leaf.attr.mode & S_IFMT) !== S_IFLNK) throw new OverlayError('EINVAL', 'readlink', idText(id));
    return leaf.layer.readlink(leaf.node);
  }

  /**
   * xattr names, without overlayfs' own (trusted.overlay.*, user.overlay.*). EOPNOTSUPP when the
   * topmost layer's filesystem does not support listing (overlayfs passes its answer on).
   */
  listxattr(id: bigint): Buffer[] {
    const { layer, node } = this.top(id, 'listxattr');
    if (layer.xattrsSupported?.(node) === false) throw new OverlayError('EOPNOTSUPP', 'listxattr', idText(id));
    return layer.listxattr(node).filter((n) => !isPrivateXattr(n));
  }

  /**
   * The value, or undefined (ENODATA) when absent or private to overlayfs. As overlayfs: names
   * outside the user., trusted. and security. namespaces are EOPNOTSUPP, except the POSIX ACLs
   * it supports itself (absent on read-only layers: ENODATA; symlinks have none: EOPNOTSUPP).
   */
  getxattr(id: bigint, name: Buffer): Buffer | undefined {
    const { layer, node } = this.top(id, 'getxattr');
    if (isPosixAcl(name)) {
      if (!this.dirs.has(id) && (layer.getattr(node).mode & S_IFMT) === S_IFLNK) throw new OverlayError('EOPNOTSUPP', 'getxattr', idText(id));
      return undefined;
    }
    if (!isStoredXattrName(name)) throw new OverlayError('EOPNOTSUPP', 'getxattr', idText(id));
    if (isPrivateXattr(name)) return undefined;
    return layer.getxattr(node, name);
  }

  /**
   * lseek(SEEK_DATA / SEEK_HOLE) in a regular file, answered by the layer that holds it;
   * ENXIO when `offset` is outside the file or no data follows it.
   */
  seek(id: bigint, offset: number, whence: 'data' | 'hole'): number {
    if (this.dirs.has(id)) throw new OverlayError('EISDIR', 'lseek', idText(id));
    const leaf = this.leaf(id, 'lseek');
    if ((leaf.attr.mode & S_IFMT) !== S_IFREG) throw new OverlayError('EINVAL', 'lseek', idText(id));
    const size = leaf.attr.size;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= size) throw new OverlayError('ENXIO', 'lseek', idText(id));
    const pos = leaf.layer.seek !== undefined ? leaf.layer.seek(leaf.node, offset, whence) : whence === 'data' ? offset : size;
    if (pos === undefined) throw new OverlayError('ENXIO', 'lseek', idText(id));
    return pos;
  }

  /** Up to `length` bytes of a regular file from `position`; short only at end of file. */
  read(id: bigint, position: number, length: number): Buffer {
    if (!Number.isSafeInteger(position) || position < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new OverlayError('EINVAL', 'read', `${idText(id)} at ${position} for ${length}`);
    }
    if (this.dirs.has(id)) throw new OverlayError('EISDIR', 'read', idText(id));
    const leaf = this.leaf(id, 'read');
    const type = leaf.attr.mode & S_IFMT;
    if (type !== S_IFREG) throw new OverlayError(isDir(leaf.attr) ? 'EISDIR' : 'EINVAL', 'read', idText(id));
    if (length === 0 || position >= leaf.attr.size) return Buffer.alloc(0);
    return leaf.layer.read(leaf.node, position, Math.min(length, leaf.attr.size - position));
  }

  /**
   * The id of a path relative to the root ("a/b", "/a/b"; "." and ".." handled lexically,
   * symlinks not followed). Throws ENOENT / ENOTDIR like lstat(2).
   */
  resolve(path: string | Buffer): bigint {
    const bytes = typeof path === 'string' ? Buffer.from(path) : path;
    const trail: bigint[] = [this.rootId];
    let start = 0;
    while (start <= bytes.length) {
      let end = bytes.indexOf(0x2f, start);
      if (end < 0) end = bytes.length;
      const part = bytes.subarray(start, end);
      start = end + 1;
      if (part.length === 0 || (part.length === 1 && part[0] === 0x2e)) continue;
      if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) {
        if (trail.length > 1) trail.pop();
        continue;
      }
      const entry = this.lookup(trail[trail.length - 1]!, part);
      if (entry === undefined) throw new OverlayError('ENOENT', 'resolve', printableName(bytes));
      trail.push(entry.id);
    }
    return trail[trail.length - 1]!;
  }

  /** The kernel dropped its last reference to `id`: a directory's stack need not be kept. */
  forget(id: bigint): void {
    if (id === this.rootId) return;
    this.dirs.delete(id);
    this.parents.delete(id);
  }

  /**
   * The id of the directory holding directory `id` (what overlayfs shows as its ".." d_ino);
   * undefined for the root and for ids not handed out by lookup or readdir.
   */
  parentOf(id: bigint): bigint | undefined {
    return this.parents.get(id);
  }

  private addDir(id: bigint, stack: DirStack, parent: bigint): void {
    this.dirs.set(id, stack);
    this.parents.set(id, parent);
  }

  /** Sizes of the internal tables, for tests and diagnostics. */
  stats(): { knownDirs: number; cachedListings: number; listingBytes: number; cachedNodes: number } {
    return {
      knownDirs: this.dirs.size,
      cachedListings: this.listings.size,
      listingBytes: this.listings.costUsed,
      cachedNodes: this.nodes.reduce((n, l) => n + l.size, 0),
    };
  }

  private node(layerIndex: number, key: number): unknown {
    const cache = this.nodes[layerIndex]!;
    let node = cache.get(key);
    if (node === undefined) {
      node = this.layers[layerIndex]!.fromKey(key);
      cache.set(key, node);
    }
    return node;
  }

  private entryOf(c: MergedChild): OverlayDirEntry {
    const layer = this.layers[c.layerIndex]!;
    const id = packId(c.layerIndex, layer.key(c.node));
    // Frozen: listings are cached and handed out again, a caller's change must not stick.
    return Object.freeze({ name: c.name, id, attr: toAttr(id, c.attr, c.stack !== undefined && c.stack.length > 2) });
  }

  /** A lookup result, with its stack recorded so the id resolves later. */
  private publish(c: MergedChild, parent: bigint): OverlayDirEntry {
    const entry = this.entryOf(c);
    // Looked-up nodes are about to be used (getattr, open, read); listed ones often are not.
    this.nodes[c.layerIndex]!.set(this.layers[c.layerIndex]!.key(c.node), c.node);
    if (c.stack !== undefined && !this.dirs.has(entry.id)) this.addDir(entry.id, c.stack, parent);
    return entry;
  }

  private dirStack(id: bigint, syscall: string): DirStack {
    const stack = this.dirs.get(id);
    if (stack !== undefined) return stack;
    // leaf() throws ESTALE for ids it cannot place and for directories we have no stack of
    // (their lower layers cannot be found from the id alone); what is left is not a directory.
    this.leaf(id, syscall);
    throw new OverlayError('ENOTDIR', syscall, idText(id));
  }

  /** Layer and node of any id (directory or not) whose topmost layer alone answers the call. */
  private top(id: bigint, syscall: string): { layer: Layer<unknown>; node: unknown } {
    const stack = this.dirs.get(id);
    if (stack !== undefined) return { layer: this.layers[stack[0]!]!, node: this.node(stack[0]!, stack[1]!) };
    return this.leaf(id, syscall);
  }

  /** Resolve a non-directory id from its bits alone, in any instance. */
  private leaf(id: bigint, syscall: string): { layer: Layer<unknown>; node: unknown; attr: NodeAttr } {
    const where = unpackId(id, this.layers.length);
    if (where === undefined) throw new OverlayError('ESTALE', syscall, idText(id));
    const layer = this.layers[where.layerIndex]!;
    let node: unknown;
    try {
      node = this.node(where.layerIndex, where.key);
    } catch {
      // A key the layer cannot resolve did not come from this layer set.
      throw new OverlayError('ESTALE', syscall, idText(id));
    }
    const attr = layer.getattr(node);
    if (isDir(attr)) throw new OverlayError('ESTALE', syscall, idText(id));
    return { layer, node, attr };
  }
}

const POSIX_ACL_NAMES = ['system.posix_acl_access', 'system.posix_acl_default'].map((n) => Buffer.from(n));
const STORED_PREFIXES = ['user.', 'trusted.', 'security.'].map((n) => Buffer.from(n));

function isPosixAcl(name: Buffer): boolean {
  return POSIX_ACL_NAMES.some((n) => n.equals(name));
}

/** Names in the namespaces a layer can store (squashfs knows only these three). */
function isStoredXattrName(name: Buffer): boolean {
  return STORED_PREFIXES.some((p) => name.length > p.length && name.subarray(0, p.length).equals(p));
}

function toAttr(id: bigint, a: NodeAttr, merged: boolean): OverlayAttr {
  // Field by field, not a spread: one shape for every attribute object of a server (a spread of
  // a layer's attributes with ino changed from number to bigint made a new shape per object).
  return Object.freeze({
    ino: id,
    mode: a.mode,
    // The kernel does not count subdirectories across layers: a merged directory says 1, which
    // find(1) and friends take as "unknown".
    nlink: merged ? 1 : a.nlink,
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    mtime: a.mtime,
    mtimeNsec: a.mtimeNsec,
    rdev: a.rdev,
    blocks: a.blocks,
    blksize: a.blksize,
  });
}

function idText(id: bigint): string {
  return `node 0x${id.toString(16)}`;
}

/** Index of `name` in entries sorted by name bytes, or -1. */
function findName(entries: readonly OverlayDirEntry[], name: Buffer): number {
  let lo = 0;
  let hi = entries.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = Buffer.compare(entries[mid]!.name, name);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}
