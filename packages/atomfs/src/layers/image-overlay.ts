import { Overlay } from '@atomfs/overlay';
import type { LayerImage } from './layer-format.js';
import { openLayer, type LayerSpec } from './open-layer.js';

/** Open every layer of an image (top first), closing those opened when one fails. */
export function openLayers(layers: readonly LayerSpec[], serving = false): LayerImage[] {
  const images: LayerImage[] = [];
  try {
    for (const l of layers) images.push(openLayer(l, { serving }));
  } catch (err) {
    for (const i of images) i.close();
    throw err;
  }
  return images;
}

/** The merged view of an image's layers, for reading it without a mount. */
export interface ImageOverlay {
  overlay: Overlay;
  close(): void;
}

export function openImageOverlay(layers: readonly LayerSpec[]): ImageOverlay {
  const images = openLayers(layers);
  return { overlay: new Overlay(images.map((i) => i.layer)), close: () => images.forEach((i) => i.close()) };
}
