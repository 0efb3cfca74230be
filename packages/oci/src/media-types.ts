/** Media types and annotation keys used by OCI image layouts and by stacker-built squashfs images. */

export const MEDIA_TYPE_IMAGE_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_TYPE_IMAGE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_IMAGE_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** A blob holding one descriptor (umoci walks through these like through an index). */
export const MEDIA_TYPE_DESCRIPTOR = 'application/vnd.oci.descriptor.v1+json';

/** The common stem of stacker's squashfs layer media types. */
export const MEDIA_TYPE_PREFIX_SQUASHFS = 'application/vnd.stacker.image.layer.squashfs';
/** The stem of stacker's erofs layer media types (`+<compressor>`, optionally `+verity`). */
export const MEDIA_TYPE_PREFIX_EROFS = 'application/vnd.stacker.image.layer.erofs';

/** What stacker ≥ v1.1 writes for a zstd squashfs layer; our writer's default. */
export const MEDIA_TYPE_SQUASHFS_ZSTD = 'application/vnd.stacker.image.layer.squashfs+zstd';
/** What stacker v1.0.x (atomfs ≤ v1.1.x) wrote. */
export const MEDIA_TYPE_SQUASHFS_ZSTD_VERITY_LEGACY = 'application/vnd.stacker.image.layer.squashfs+zstd+verity';

export type LayerFsType = 'squashfs' | 'erofs';

/** What a layer media type says about the blob (the compressor in the name is not needed: the
 * squashfs superblock says it, and the root-hash annotation, not a `+verity`, says verity). */
export interface LayerMediaType {
  readonly fsType: LayerFsType;
}

/**
 * Every layer media type we mount, matched EXACTLY (Go atomfs matches the squashfs stem by
 * prefix, which also takes `…squashfs+evil` or `…squashfsXYZ`): what stacker has written over
 * its versions — the bare type of the oldest releases, `+<compression>` (GenerateSquashfsMediaType
 * with gzip or zstd) and v1.0.x's `+<compression>+verity`. New layer kinds (erofs) are added here.
 */
export const LAYER_MEDIA_TYPES: ReadonlyMap<string, LayerMediaType> = new Map<string, LayerMediaType>([
  [MEDIA_TYPE_PREFIX_SQUASHFS, { fsType: 'squashfs' }],
  [`${MEDIA_TYPE_PREFIX_SQUASHFS}+gzip`, { fsType: 'squashfs' }],
  [MEDIA_TYPE_SQUASHFS_ZSTD, { fsType: 'squashfs' }],
  [`${MEDIA_TYPE_PREFIX_SQUASHFS}+gzip+verity`, { fsType: 'squashfs' }],
  [MEDIA_TYPE_SQUASHFS_ZSTD_VERITY_LEGACY, { fsType: 'squashfs' }],
  // erofs: what stacker and Go atomfs (GenerateErofsMediaType) write, `+<lz4|lz4hc|zstd>[+verity]`.
  ...['lz4', 'lz4hc', 'zstd'].flatMap((c): [string, LayerMediaType][] => [
    [`${MEDIA_TYPE_PREFIX_EROFS}+${c}`, { fsType: 'erofs' }],
    [`${MEDIA_TYPE_PREFIX_EROFS}+${c}+verity`, { fsType: 'erofs' }],
  ]),
]);

/** Top-level index.json annotation naming a tag. */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
/** dm-verity root hash of a layer, current name (checked first). */
export const ANNOTATION_VERITY_ROOT_HASH = 'io.stackeroci.stacker.atomfs_verity_root_hash';
/** dm-verity root hash of a layer, name used by stacker v1.0.x (fallback). */
export const ANNOTATION_VERITY_ROOT_HASH_LEGACY = 'io.stackeroci.stacker.squashfs_verity_root_hash';

/** The only image-layout version there is. */
export const IMAGE_LAYOUT_VERSION = '1.0.0';
