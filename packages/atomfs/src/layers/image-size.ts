import type { ByteSource } from '@atomfs/io';
import type { LayerFsType } from './layer-format.js';

/**
 * The size a layer image's own superblock gives itself: the dm-verity data follows, rounded up
 * to 4096, for squashfs and erofs alike. Kept apart from the readers so that `atomfs verify` and
 * the dm-verity path need none of them. Returns a message instead of a size for an image too
 * small to have one.
 */
export function imageBytes(fsType: LayerFsType, source: ByteSource): number | string {
  const f = SIZE_FIELDS[fsType];
  if (source.size < f.minBytes) return `${source.size} bytes is too small for a ${fsType} image`;
  return f.read(source);
}

interface SizeField {
  minBytes: number;
  read(source: ByteSource): number;
}

const SIZE_FIELDS: Record<LayerFsType, SizeField> = {
  // squashfs 4.0: bytes_used, u64 LE at 40 of the 96-byte superblock.
  squashfs: { minBytes: 96, read: (s) => Number(s.read(40, 8).readBigUInt64LE(0)) },
  // erofs: the superblock at 1024; blkszbits (u8 at +12) and blocks (u32 LE at +36).
  erofs: { minBytes: 1024 + 128, read: (s) => s.read(1024 + 36, 4).readUInt32LE(0) * 2 ** s.read(1024 + 12, 1)[0]! },
};
