/** A mountable layer: one stacker squashfs blob plus its expected dm-verity root hash. */
import type { Descriptor } from './descriptor.js';
import { blobPath, parseDigest } from './digest.js';
import { InvalidRootHashError, UnsupportedLayerError, quote, show } from './errors.js';
import { has } from './json-fields.js';
import {
  ANNOTATION_VERITY_ROOT_HASH,
  ANNOTATION_VERITY_ROOT_HASH_LEGACY,
  LAYER_MEDIA_TYPES,
  MEDIA_TYPE_PREFIX_EROFS,
  type LayerFsType,
} from './media-types.js';

export type { LayerFsType } from './media-types.js';

export interface Layer {
  /** `sha256:<hex>`, validated. */
  readonly digest: string;
  /** The 64-hex part of the digest: names the blob, the dm device `<hex>-verity`, the per-layer mountpoint. */
  readonly hex: string;
  readonly mediaType: string;
  /** Size claimed by the descriptor (Go ignores it; we check the blob against it at resolve time). */
  readonly size: number;
  /** `<layoutDir>/blobs/sha256/<hex>`, absolute when the layout dir was. */
  readonly path: string;
  /** Expected dm-verity root hash, 64 lowercase hex; absent when the image has no verity annotation. */
  readonly rootHash?: string;
  /** Which annotation the root hash came from (current or legacy name). */
  readonly rootHashAnnotation?: string;
  readonly fsType: LayerFsType;
  readonly annotations: Readonly<Record<string, string>>;
}

const ROOT_HASH_ANNOTATIONS = [ANNOTATION_VERITY_ROOT_HASH, ANNOTATION_VERITY_ROOT_HASH_LEGACY] as const;
const HEX = /^[0-9a-fA-F]*$/;
/** dm-verity's sha256 root hash: 32 bytes. */
const SHA256_HEX_DIGITS = 64;

/**
 * Root hash from the layer annotations, current name first, then the stacker v1.0.x name — the
 * first one PRESENT wins (a bad current value is an error even if the legacy one is fine).
 * Go decodes the hex and wants 32 bytes ("unexpected key size for <hash>"); we keep that phrase.
 * Upper-case hex is accepted and lower-cased, because the dm table prints lower case and Go
 * compares strings.
 */
function rootHashOf(digest: string, annotations: Readonly<Record<string, string>>): { value: string; annotation: string } | undefined {
  for (const annotation of ROOT_HASH_ANNOTATIONS) {
    if (!has(annotations, annotation)) continue;
    const value = annotations[annotation] as string;
    // Characters first, then length: a digit short is a wrong length, not "not hex".
    if (!HEX.test(value)) {
      throw new InvalidRootHashError(digest, annotation, value, `invalid root hash ${quote(value)}: not hex`);
    }
    if (value.length !== SHA256_HEX_DIGITS) {
      throw new InvalidRootHashError(
        digest,
        annotation,
        value,
        `invalid root hash: unexpected key size for ${quote(value)} (${value.length} hex digits, expected ${SHA256_HEX_DIGITS} for sha256)`,
      );
    }
    return { value: value.toLowerCase(), annotation };
  }
  return undefined;
}

/** Turn a manifest layer descriptor into a Layer, or say why we cannot mount it. */
export function layerFromDescriptor(layoutDir: string, desc: Descriptor, where: string): Layer {
  const digest = parseDigest(desc.digest, where);
  const mt = desc.mediaType;
  const known = LAYER_MEDIA_TYPES.get(mt);
  if (known === undefined) {
    if (mt.startsWith(MEDIA_TYPE_PREFIX_EROFS)) {
      throw new UnsupportedLayerError(digest.text, mt, `unknown erofs media-type ${show(mt)} (layer ${digest.text}; stacker writes ${MEDIA_TYPE_PREFIX_EROFS}+lz4, +lz4hc or +zstd, each optionally +verity)`);
    }
    throw new UnsupportedLayerError(
      digest.text,
      mt,
      `unknown media-type ${show(mt)} (layer ${digest.text}; only stacker squashfs layers can be mounted)`,
    );
  }
  const annotations = desc.annotations ?? {};
  const rh = rootHashOf(digest.text, annotations);
  return {
    digest: digest.text,
    hex: digest.hex,
    mediaType: mt,
    size: desc.size,
    path: blobPath(layoutDir, digest),
    ...(rh !== undefined ? { rootHash: rh.value, rootHashAnnotation: rh.annotation } : {}),
    fsType: known.fsType,
    annotations,
  };
}
