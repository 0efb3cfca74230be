/** Media types and annotation keys used by OCI image layouts and by stacker-built squashfs images. */

export const MEDIA_TYPE_IMAGE_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_TYPE_IMAGE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_IMAGE_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** A blob holding one descriptor (umoci walks through these like through an index). */
export const MEDIA_TYPE_DESCRIPTOR = 'application/vnd.oci.descriptor.v1+json';

/**
 * Stacker layer media types are matched by PREFIX (Go: strings.HasPrefix): this covers the current
 * `…squashfs+zstd` / `…squashfs+gzip`, the legacy `…squashfs+zstd+verity` (stacker ≤ v1.0.x) and the
 * oldest bare `…squashfs`.
 */
export const MEDIA_TYPE_PREFIX_SQUASHFS = 'application/vnd.stacker.image.layer.squashfs';
export const MEDIA_TYPE_PREFIX_EROFS = 'application/vnd.stacker.image.layer.erofs';

/** What stacker ≥ v1.1 writes for a zstd squashfs layer; our writer's default. */
export const MEDIA_TYPE_SQUASHFS_ZSTD = 'application/vnd.stacker.image.layer.squashfs+zstd';
/** What stacker v1.0.x (atomfs ≤ v1.1.x) wrote. */
export const MEDIA_TYPE_SQUASHFS_ZSTD_VERITY_LEGACY = 'application/vnd.stacker.image.layer.squashfs+zstd+verity';

/** Top-level index.json annotation naming a tag. */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
/** dm-verity root hash of a layer, current name (checked first). */
export const ANNOTATION_VERITY_ROOT_HASH = 'io.stackeroci.stacker.atomfs_verity_root_hash';
/** dm-verity root hash of a layer, name used by stacker v1.0.x (fallback). */
export const ANNOTATION_VERITY_ROOT_HASH_LEGACY = 'io.stackeroci.stacker.squashfs_verity_root_hash';

/** The only image-layout version there is. */
export const IMAGE_LAYOUT_VERSION = '1.0.0';
