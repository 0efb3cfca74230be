import { FileSource } from '@atomfs/io';
import type { Layer as OciLayer } from '@atomfs/oci';
import type { RemoteBlob } from '@atomfs/registry';
import { CommandError } from '../errors.js';
import { imageBytes } from './image-size.js';
import type { LayerFsType } from './layer-format.js';

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
  /** The blob's filesystem, from its media type (absent in records of older versions: squashfs). */
  fsType?: LayerFsType;
  /**
   * A layer read from a registry: where to fetch it and where it is cached (`path` is its place
   * in the cache). Holds no secret: credentials stay in the auth file it names.
   */
  remote?: RemoteBlob;
}

/** A layer that cannot be opened: the message names the layer and what is wrong. */
export class LayerOpenError extends Error {
  override name = 'LayerOpenError';
}

/** stacker puts the verity data at the squashfs size rounded up to this. */
export const VERITY_ALIGN = 4096;

const ROOT_HASH_ANNOTATIONS = '"io.stackeroci.stacker.atomfs_verity_root_hash" or "io.stackeroci.stacker.squashfs_verity_root_hash"';

/** The layers of an image as LayerSpecs; a layer without root hash is refused unless allowed. */
export function layerSpecs(layers: readonly OciLayer[], allowMissingVerity: boolean): LayerSpec[] {
  return layers.map((l) => {
    if (l.rootHash === undefined && !allowMissingVerity) {
      throw new CommandError(`${l.digest} has no root hash in ${ROOT_HASH_ANNOTATIONS}; mount with --allow-missing-verity to use it unchecked`);
    }
    const remote = (l as OciLayer & { remote?: RemoteBlob }).remote;
    return { path: l.path, digest: l.digest, fsType: l.fsType, ...(l.rootHash !== undefined ? { rootHash: l.rootHash } : {}), ...(remote !== undefined ? { remote } : {}) };
  });
}

/** Where the verity superblock of a layer file is (its image's size rounded up to 4096). */
export function hashOffsetOf(spec: Pick<LayerSpec, 'path' | 'fsType'>): number {
  const file = new FileSource(spec.path);
  try {
    const bytes = imageBytes(spec.fsType ?? 'squashfs', file);
    if (typeof bytes === 'string') throw new LayerOpenError(`${spec.path}: ${bytes}`);
    return Math.ceil(bytes / VERITY_ALIGN) * VERITY_ALIGN;
  } finally {
    file.close();
  }
}
