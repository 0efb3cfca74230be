import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Layer as OciLayer } from '@atomfs/oci';
import { CommandError } from '../errors.js';

/**
 * What the mount and verify logic knows of a layer before opening it. Kept apart from
 * open-layer.ts (which loads the squashfs reader and its decoders) so that `atomfs verify` and
 * `atomfs umount` do not pay for loading those.
 */
export interface LayerSpec {
  /** Absolute path of the layer blob (squashfs + appended verity data). */
  path: string;
  /** "sha256:<hex>", names the layer in messages. */
  digest: string;
  /** Lowercase hex root hash from the manifest annotation; absent ⇒ the layer is served unchecked. */
  rootHash?: string;
}

/** A layer that cannot be opened: the message names the layer and what is wrong. */
export class LayerOpenError extends Error {
  override name = 'LayerOpenError';
}

/** stacker puts the verity data at the squashfs size rounded up to this. */
export const VERITY_ALIGN = 4096;

/** Where squashfs 4.0 keeps bytes_used (u64 LE), and the superblock's size. */
const BYTES_USED_OFFSET = 40;
const SQUASHFS_SUPERBLOCK_BYTES = 96;

const ROOT_HASH_ANNOTATIONS = '"io.stackeroci.stacker.atomfs_verity_root_hash" or "io.stackeroci.stacker.squashfs_verity_root_hash"';

/** The layers of an image as LayerSpecs; a layer without root hash is refused unless allowed. */
export function layerSpecs(layers: readonly OciLayer[], allowMissingVerity: boolean): LayerSpec[] {
  return layers.map((l) => {
    if (l.rootHash === undefined && !allowMissingVerity) {
      throw new CommandError(`${l.digest} has no root hash in ${ROOT_HASH_ANNOTATIONS}; mount with --allow-missing-verity to use it unchecked`);
    }
    return { path: l.path, digest: l.digest, ...(l.rootHash !== undefined ? { rootHash: l.rootHash } : {}) };
  });
}

/** Where the verity superblock of a layer file is (the squashfs size rounded up to 4096). */
export function hashOffsetOf(path: string): number {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(8);
    if (size < SQUASHFS_SUPERBLOCK_BYTES || readSync(fd, head, 0, 8, BYTES_USED_OFFSET) !== 8) {
      throw new LayerOpenError(`${path}: too small for a squashfs image`);
    }
    return Math.ceil(Number(head.readBigUInt64LE(0)) / VERITY_ALIGN) * VERITY_ALIGN;
  } finally {
    closeSync(fd);
  }
}
