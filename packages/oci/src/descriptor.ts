/** OCI content descriptor (image-spec descriptor.md): what points from one document to a blob. */
import { has, type JsonFields } from './json-fields.js';
import { ANNOTATION_REF_NAME } from './media-types.js';

export interface Platform {
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
}

export interface Descriptor {
  readonly mediaType: string;
  /** Still unvalidated text: checked with parseDigest only when the blob is actually used, as Go does. */
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly urls?: readonly string[];
  readonly platform?: Platform;
  readonly artifactType?: string;
}

/**
 * Type-check one descriptor. `mediaType` is required by the spec; `digest` and `size` too.
 * Unknown fields are ignored (forward compatibility), known ones must have the right type.
 */
export function parseDescriptor(f: JsonFields, value: unknown, field: string): Descriptor {
  const obj = f.object(value, field);
  const mediaType = f.requiredString(obj, 'mediaType', field);
  const digest = f.requiredString(obj, 'digest', field);
  const size = f.requiredCount(obj, 'size', field);
  const annotations = f.optionalStringMap(obj, 'annotations', field);
  const artifactType = f.optionalString(obj, 'artifactType', field);
  const urlsRaw = f.optionalArray(obj, 'urls', field);
  const urls = urlsRaw?.map((u, i) => {
    if (typeof u !== 'string') f.fail(`${field}.urls[${i}]`, 'expected a string');
    return u;
  });
  let platform: Platform | undefined;
  if (obj['platform'] !== undefined && obj['platform'] !== null) {
    const p = f.object(obj['platform'], `${field}.platform`);
    const variant = f.optionalString(p, 'variant', `${field}.platform`);
    platform = {
      architecture: f.requiredString(p, 'architecture', `${field}.platform`),
      os: f.requiredString(p, 'os', `${field}.platform`),
      ...(variant !== undefined ? { variant } : {}),
    };
  }
  return {
    mediaType,
    digest,
    size,
    ...(annotations !== undefined ? { annotations } : {}),
    ...(urls !== undefined ? { urls } : {}),
    ...(platform !== undefined ? { platform } : {}),
    ...(artifactType !== undefined ? { artifactType } : {}),
  };
}

/** The tag (ref.name annotation) of a top-level index entry; own property only. */
export function refNameOf(d: Descriptor): string | undefined {
  return d.annotations !== undefined && has(d.annotations, ANNOTATION_REF_NAME) ? d.annotations[ANNOTATION_REF_NAME] : undefined;
}
