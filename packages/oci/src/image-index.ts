/** OCI image index (image-spec image-index.md): the top-level index.json and nested index blobs. */
import { parseDescriptor, type Descriptor } from './descriptor.js';
import { JsonFields, parseJson } from './json-fields.js';

export interface ImageIndex {
  readonly schemaVersion?: number;
  readonly mediaType?: string;
  readonly manifests: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * Parse an index document. `schemaVersion` is type-checked but its value is not enforced (umoci,
 * hence Go atomfs, does not either). `manifests` is required; `null` counts as empty (Go nil slice).
 */
export function parseImageIndex(bytes: Uint8Array, path: string): ImageIndex {
  const f = new JsonFields(path);
  const obj = f.object(parseJson(bytes, path), '');
  const schemaVersion = f.optionalCount(obj, 'schemaVersion', '');
  const mediaType = f.optionalString(obj, 'mediaType', '');
  if (!Object.prototype.hasOwnProperty.call(obj, 'manifests')) f.fail('manifests', 'missing required field');
  const list = f.optionalArray(obj, 'manifests', '') ?? [];
  const manifests = list.map((d, i) => parseDescriptor(f, d, `manifests[${i}]`));
  const annotations = f.optionalStringMap(obj, 'annotations', '');
  return {
    ...(schemaVersion !== undefined ? { schemaVersion } : {}),
    ...(mediaType !== undefined ? { mediaType } : {}),
    manifests,
    ...(annotations !== undefined ? { annotations } : {}),
  };
}
