import type { ByteSource } from '@atomfs/io';
import { Erofs } from '@atomfs/erofs';
import { imageBytes } from './image-size.js';
import type { LayerFormat, LayerImage, LayerOpenOptions } from './layer-format.js';
import { LayerOpenError } from './layer-spec.js';
import { ErofsLayer } from './erofs-layer.js';

export const erofsFormat: LayerFormat = {
  fsType: 'erofs',
  kernelType: 'erofs',
  imageBytes(source: ByteSource): number {
    const bytes = imageBytes('erofs', source);
    if (typeof bytes === 'string') throw new LayerOpenError(bytes);
    return bytes;
  },
  open(source: ByteSource, options: LayerOpenOptions): LayerImage {
    const image = new Erofs(source);
    return {
      layer: new ErofsLayer(image, { reuseReadBuffer: options.serving === true }),
      blockSize: image.superblock.blockSize,
      statfs: () => image.statfs(),
      close: () => image.close(),
    };
  },
};
