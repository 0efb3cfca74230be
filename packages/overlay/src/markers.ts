/**
 * How layers mark deletions and opaque directories, and which xattrs belong to overlayfs itself.
 * Two conventions are understood, in any layer and mixed freely:
 *
 * - kernel overlayfs: a whiteout is a character device 0:0 (or, since Linux 6.7, an empty regular
 *   file carrying the `overlay.whiteout` xattr: an "xwhiteout"); an opaque directory carries
 *   `overlay.opaque` = "y". The kernel reads these under `trusted.` (default) or `user.`
 *   (`userxattr` mounts); we honour both prefixes, because images are built in both modes.
 * - AUFS / OCI tar layers: a file `.wh.NAME` deletes NAME of the layers below, and an entry
 *   `.wh..wh..opq` makes its directory opaque. Neither is ever shown.
 */
import type { Layer, NodeAttr } from './layer.js';

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;

export function isDir(attr: NodeAttr): boolean {
  return (attr.mode & S_IFMT) === S_IFDIR;
}

export const WH_PREFIX = Buffer.from('.wh.');
export const OPAQUE_ENTRY = Buffer.from('.wh..wh..opq');

const PRIVATE_PREFIXES = [Buffer.from('trusted.overlay.'), Buffer.from('user.overlay.')];
const OPAQUE_XATTRS = PRIVATE_PREFIXES.map((p) => Buffer.concat([p, Buffer.from('opaque')]));
const XWHITEOUT_XATTRS = PRIVATE_PREFIXES.map((p) => Buffer.concat([p, Buffer.from('whiteout')]));
const OPAQUE_YES = 0x79; // 'y'; 'x' means "holds xwhiteouts", which is not opaque

/** True for `trusted.overlay.*` and `user.overlay.*`: overlayfs bookkeeping, never shown. */
export function isPrivateXattr(name: Buffer): boolean {
  return PRIVATE_PREFIXES.some((p) => name.length > p.length && name.subarray(0, p.length).equals(p));
}

/** Starts with ".wh."? (Byte tests: this runs for every entry of every listing.) */
export function hasWhPrefix(name: Buffer): boolean {
  return name.length >= 4 && name[0] === 0x2e && name[1] === 0x77 && name[2] === 0x68 && name[3] === 0x2e;
}

/**
 * For an entry `.wh.NAME`: the NAME it deletes, or undefined for the bare `.wh.` and for AUFS's
 * own bookkeeping entries `.wh..wh.*` (`.wh..wh..opq`, `.wh..wh.plnk`, ...).
 */
export function whiteoutTarget(name: Buffer): Buffer | undefined {
  if (!hasWhPrefix(name) || name.length === WH_PREFIX.length) return undefined;
  if (hasWhPrefix(name.subarray(WH_PREFIX.length))) return undefined; // `.wh..wh.*`
  return name.subarray(WH_PREFIX.length);
}

/** A kernel-style whiteout: char device 0:0, or an empty regular file with an overlay.whiteout xattr. */
export function isWhiteout<N>(layer: Layer<N>, node: N, attr: NodeAttr): boolean {
  const type = attr.mode & S_IFMT;
  if (type === S_IFCHR) return attr.rdev === 0;
  // The kernel's lookup treats such a file as a whiteout in any lower layer (its readdir only in
  // directories marked opaque="x"); we follow lookup everywhere so that listing and lookup agree.
  if (type === S_IFREG && attr.size === 0) {
    return XWHITEOUT_XATTRS.some((x) => layer.getxattr(node, x) !== undefined);
  }
  return false;
}

/** Does this directory hide the same directory in the layers below it? */
export function isOpaqueDir<N>(layer: Layer<N>, dir: N): boolean {
  for (const x of OPAQUE_XATTRS) {
    const v = layer.getxattr(dir, x);
    // The kernel reads the value into a 1-byte buffer: anything longer is not "y".
    if (v !== undefined && v.length === 1 && v[0] === OPAQUE_YES) return true;
  }
  return layer.lookup(dir, OPAQUE_ENTRY) !== undefined;
}

/** Names a layer may hand us that can never be a directory entry (corrupt images). */
export function isBadName(name: Buffer): boolean {
  if (name.length === 0) return true;
  if (name.length === 1 && name[0] === 0x2e) return true;
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return true;
  return name.includes(0x2f) || name.includes(0);
}
