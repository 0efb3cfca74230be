export type { Layer, LayerDirEntry, NodeAttr } from './layer.js';
export { Overlay, type OverlayAttr, type OverlayDirEntry, type OverlayOptions } from './overlay.js';
export { OverlayError, LayerSetupError, ERRNO, type OverlayErrorCode } from './errors.js';
export { packId, unpackId, MAX_KEY, MAX_LAYERS, type UnpackedId } from './node-id.js';
export { isPrivateXattr } from './markers.js';
