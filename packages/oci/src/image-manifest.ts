/** OCI image manifest (image-spec manifest.md). */
import { parseDescriptor, type Descriptor } from './descriptor.js';
import { quote } from './errors.js';
import { JsonFields, parseJson } from './json-fields.js';
import { MEDIA_TYPE_IMAGE_MANIFEST } from './media-types.js';

export interface ImageManifest {
  readonly schemaVersion?: number;
  readonly mediaType?: string;
  /** resolveImage checks its blob's size and digest and that it is a JSON object (Go never reads it). */
  readonly config?: Descriptor;
  /** Bottom-most first, as in OCI. */
  readonly layers: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * Parse a manifest blob. A body `mediaType`, when present, must agree with the descriptor's
 * (the spec added that field to stop one document being read as another). `config` and `layers`
 * may be absent: Go tolerates both, and an empty layer list is reported later with a clear error.
 */
export function parseImageManifest(bytes: Uint8Array, path: string): ImageManifest {
  const f = new JsonFields(path);
  const obj = f.object(parseJson(bytes, path), '');
  const schemaVersion = f.optionalCount(obj, 'schemaVersion', '');
  const mediaType = f.optionalString(obj, 'mediaType', '');
  if (mediaType !== undefined && mediaType !== MEDIA_TYPE_IMAGE_MANIFEST) {
    f.fail('mediaType', `expected ${MEDIA_TYPE_IMAGE_MANIFEST}, got ${quote(mediaType)}`);
  }
  const config = obj['config'] === undefined || obj['config'] === null ? undefined : parseDescriptor(f, obj['config'], 'config');
  const layers = (f.optionalArray(obj, 'layers', '') ?? []).map((d, i) => parseDescriptor(f, d, `layers[${i}]`));
  const annotations = f.optionalStringMap(obj, 'annotations', '');
  return {
    ...(schemaVersion !== undefined ? { schemaVersion } : {}),
    ...(mediaType !== undefined ? { mediaType } : {}),
    ...(config !== undefined ? { config } : {}),
    layers,
    ...(annotations !== undefined ? { annotations } : {}),
  };
}
