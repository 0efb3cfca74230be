import { Overlay } from '@atomfs/overlay';
import type { SquashFS } from '@atomfs/squashfs';
import { openLayer, type LayerSpec } from './open-layer.js';
import { SquashfsLayer } from './squashfs-layer.js';

/** The merged view of an image's layers (top first), for reading it without a mount. */
export interface ImageOverlay {
  overlay: Overlay;
  close(): void;
}

export function openImageOverlay(layers: readonly LayerSpec[]): ImageOverlay {
  const images: SquashFS[] = [];
  try {
    for (const l of layers) images.push(openLayer(l, {}));
  } catch (err) {
    for (const i of images) i.close();
    throw err;
  }
  return { overlay: new Overlay(images.map((i) => new SquashfsLayer(i))), close: () => images.forEach((i) => i.close()) };
}
