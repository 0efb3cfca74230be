import { ByteRangeError, FileSource, SourceTruncatedError, type ByteSource } from '@atomfs/io';
import { ErofsError } from '@atomfs/erofs';
import { SquashfsError } from '@atomfs/squashfs';
import { FileByteSource, openVerified, VerityError } from '@atomfs/verity';
import { RemoteBlobSource } from '@atomfs/registry';
import { imageBytes } from './image-size.js';
import type { LayerFormat, LayerFsType, LayerImage, LayerOpenOptions } from './layer-format.js';
import { LayerOpenError, VERITY_ALIGN, type LayerSpec } from './layer-spec.js';
import { erofsFormat } from './erofs-format.js';
import { squashfsFormat } from './squashfs-format.js';

export { hashOffsetOf, LayerOpenError, type LayerSpec } from './layer-spec.js';

/** Every layer format atomfs reads: the one place that knows which exist. */
const FORMATS: Partial<Record<LayerFsType, LayerFormat>> = { squashfs: squashfsFormat, erofs: erofsFormat };

export function layerFormat(fsType: LayerFsType = 'squashfs'): LayerFormat {
  const f = FORMATS[fsType];
  if (f === undefined) throw new LayerOpenError(`${fsType} layers are not supported yet`);
  return f;
}

/**
 * Open a layer's image. With a root hash every byte the reader gets comes through a
 * VerifiedSource: data blocks are checked against the dm-verity tree before use, so a tampered
 * blob gives errors, never wrong bytes. The image size that locates the verity superblock is
 * read unverified, but a wrong value cannot pass: the verity superblock must then sit at the
 * rounded-up size and cover exactly that many blocks, and block 0 (which holds the size) is
 * itself verified against the trusted root hash when the reader reads its superblock.
 */
export function openLayer(spec: LayerSpec, options: LayerOpenOptions = {}): LayerImage {
  const format = layerFormat(spec.fsType);
  // One descriptor for everything: the verity checker reads through it, the reader through that.
  // A registry layer reads through the blob cache; the verity check on top is the same.
  const file: ByteSource =
    spec.remote !== undefined
      ? new RemoteBlobSource(spec.remote, { label: spec.digest })
      : spec.rootHash === undefined
        ? new FileSource(spec.path, { label: spec.digest })
        : new FileByteSource(spec.path, { label: spec.digest });
  try {
    return format.open(spec.rootHash === undefined ? file : verifiedSource(spec, spec.rootHash, format, file), options);
  } catch (err) {
    file.close?.();
    throw layerError(spec, err);
  }
}

function verifiedSource(spec: LayerSpec, rootHash: string, format: LayerFormat, file: ByteSource): ByteSource {
  const bytes = imageBytes(format.fsType, file);
  if (typeof bytes === 'string') throw new LayerOpenError(`layer ${spec.digest}: ${bytes}`);
  const hashOffset = Math.ceil(bytes / VERITY_ALIGN) * VERITY_ALIGN;
  if (!Number.isSafeInteger(hashOffset) || hashOffset <= 0 || hashOffset >= file.size) {
    throw new LayerOpenError(`layer ${spec.digest} has a root hash but no dm-verity data after its ${format.fsType} image`);
  }
  return openVerified(file, {
    hashOffset,
    rootHash,
    label: spec.digest,
    expectedDataBlocks: hashOffset / VERITY_ALIGN,
    algorithms: ['sha256'],
  });
}

/** Errors that are facts about the layer's bytes name the layer. */
function layerError(spec: LayerSpec, err: unknown): unknown {
  if (err instanceof LayerOpenError) return err;
  if (err instanceof VerityError || err instanceof SquashfsError || err instanceof ErofsError || err instanceof ByteRangeError || err instanceof SourceTruncatedError) {
    return new LayerOpenError(`layer ${spec.digest}: ${err.message}`);
  }
  return err;
}
