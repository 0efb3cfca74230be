import { FileSource, SquashFS, SquashfsError, type SquashfsOptions } from '@atomfs/squashfs';
import { FileByteSource, openVerified, VerityError } from '@atomfs/verity';

import { LayerOpenError, VERITY_ALIGN, type LayerSpec } from './layer-spec.js';

export { hashOffsetOf, LayerOpenError, type LayerSpec } from './layer-spec.js';

/**
 * Open a layer's squashfs image. With a root hash every byte the reader gets comes through a
 * VerifiedSource: data blocks are checked against the dm-verity tree before use, so a tampered
 * blob gives errors, never wrong bytes. The squashfs size that locates the verity superblock is
 * read unverified, but a wrong value cannot pass: the verity superblock must then sit at the
 * rounded-up size and cover exactly that many blocks, and block 0 (which holds the size) is
 * itself verified against the trusted root hash when the reader reads the superblock.
 */
export function openLayer(spec: LayerSpec, options: Pick<SquashfsOptions, 'reuseBlockBuffers' | 'dataCacheBytes'> = {}): SquashFS {
  const file = new FileSource(spec.path);
  try {
    if (spec.rootHash === undefined) return new SquashFS(file, options);
    if (file.size < 96) throw new LayerOpenError(`layer ${spec.digest}: ${file.size} bytes is too small for a squashfs image`);
    const bytesUsed = Number(file.read(40, 8).readBigUInt64LE(0));
    const hashOffset = Math.ceil(bytesUsed / VERITY_ALIGN) * VERITY_ALIGN;
    if (!Number.isSafeInteger(hashOffset) || hashOffset <= 0 || hashOffset >= file.size) {
      throw new LayerOpenError(`layer ${spec.digest} has a root hash but no dm-verity data after its squashfs image`);
    }
    // verity's own file source: it reads into reused buffers, a squashfs FileSource allocates per read.
    file.close();
    const raw = new FileByteSource(spec.path, { label: spec.digest });
    let verified;
    try {
      verified = openVerified(raw, {
      hashOffset,
      rootHash: spec.rootHash,
      label: spec.digest,
      expectedDataBlocks: hashOffset / VERITY_ALIGN,
      algorithms: ['sha256'],
      });
    } catch (err) {
      raw.close();
      throw err;
    }
    return new SquashFS(verified, options);
  } catch (err) {
    file.close();
    if (err instanceof LayerOpenError) throw err;
    if (err instanceof VerityError || err instanceof SquashfsError) throw new LayerOpenError(`layer ${spec.digest}: ${err.message}`);
    throw err;
  }
}
