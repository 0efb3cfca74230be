import type { ByteSource } from '@atomfs/io';
import type { Layer } from '@atomfs/overlay';

/** The filesystem of a layer blob, as its OCI media type says (packages/oci LAYER_MEDIA_TYPES). */
export type LayerFsType = 'squashfs' | 'erofs';

/** What the overlay, the FUSE server and the CLI need of one opened layer image, whatever its format. */
export interface LayerImage {
  /** The image as an overlay layer. */
  readonly layer: Layer<unknown>;
  /** The filesystem's block size (statfs's unit). */
  readonly blockSize: number;
  statfs(): { blocks: number; blockSize: number; files: number };
  close(): void;
}

export interface LayerOpenOptions {
  /** A server that sends each reply before the next read: buffers may be reused. */
  serving?: boolean;
}

/**
 * One layer format: how to find where its image ends (the dm-verity data follows, 4096-aligned,
 * as stacker writes it for squashfs and erofs alike), how to open it, and what the kernel calls
 * it. The one place that knows which formats exist is FORMATS in open-layer.ts.
 */
export interface LayerFormat {
  readonly fsType: LayerFsType;
  /** `mount -t` type for the kernel path. */
  readonly kernelType: string;
  /** The size the image's own superblock gives itself (read unverified; see open-layer.ts). */
  imageBytes(source: ByteSource): number;
  open(source: ByteSource, options: LayerOpenOptions): LayerImage;
}
