import type { ByteSource } from '@atomfs/io';
import { SquashFS, SquashfsError } from '@atomfs/squashfs';
import type { LayerFormat, LayerImage, LayerOpenOptions } from './layer-format.js';
import { SquashfsLayer } from './squashfs-layer.js';
import { SERVING } from './serving.js';

/** Where squashfs 4.0 keeps bytes_used (u64 LE), and the superblock's size. */
const BYTES_USED_OFFSET = 40;
const SUPERBLOCK_BYTES = 96;

export const squashfsFormat: LayerFormat = {
  fsType: 'squashfs',
  kernelType: 'squashfs',
  imageBytes(source: ByteSource): number {
    if (source.size < SUPERBLOCK_BYTES) throw new SquashfsError(`${source.size} bytes is too small for a squashfs image`);
    return Number(source.read(BYTES_USED_OFFSET, 8).readBigUInt64LE(0));
  },
  open(source: ByteSource, options: LayerOpenOptions): LayerImage {
    const image = new SquashFS(source, options.serving === true ? SERVING : {});
    return {
      layer: new SquashfsLayer(image, { reuseReadBuffer: options.serving === true }),
      blockSize: image.superblock.blockSize,
      statfs: () => image.statfs(),
      close: () => image.close(),
    };
  },
};
