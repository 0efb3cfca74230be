/** @atomfs/oci — OCI image layouts holding stacker squashfs layers. */
export * from './errors.js';
export * from './media-types.js';
export { parseDigest, blobPath, type Digest } from './digest.js';
export { parseDescriptor, refNameOf, type Descriptor, type Platform } from './descriptor.js';
export { parseImageIndex, type ImageIndex } from './image-index.js';
export { parseImageManifest, type ImageManifest } from './image-manifest.js';
export { DEFAULT_MAX_JSON_BYTES } from './bounded-read.js';
export { openLayout, readTopLevelIndex, listTags, type OciLayout, type ReadLimits } from './layout.js';
export { parseImageRef, isValidRefName, checkRefName, type ImageRef, type ParseImageRefOptions } from './reference.js';
export { layerFromDescriptor, type Layer, type LayerFsType } from './layer.js';
export {
  resolveImage,
  DEFAULT_MAX_INDEX_DEPTH,
  DEFAULT_MAX_INDEX_BLOBS,
  DEFAULT_MAX_LAYERS,
  type ResolveOptions,
  type ResolvedImage,
} from './resolve.js';
export { verifyLayerDigest, type LayerBlobRef } from './verify-layer.js';
export { writeLayout, type WriteImageSpec, type WriteLayerSpec, type WrittenImage } from './writer.js';
