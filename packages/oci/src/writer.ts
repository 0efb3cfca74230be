/**
 * A small OCI layout writer for tests and the sample image: copies layer files into blobs/ by
 * sha256, writes a minimal config, the manifest, optional nested indexes, and index.json with the
 * ref.name annotation. Several calls on one directory add several tags sharing blobs; re-using a
 * tag replaces its entry (like `umoci tag`). Deliberately permissive about layer media types and
 * annotations so tests can build the bad images the reader must reject. Not safe against
 * concurrent writers on the same directory.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_MAX_JSON_BYTES, readBoundedFile } from './bounded-read.js';
import { refNameOf, type Descriptor } from './descriptor.js';
import { LayoutError } from './errors.js';
import { parseImageIndex } from './image-index.js';
import { parseJson } from './json-fields.js';
import type { ImageManifest } from './image-manifest.js';
import {
  ANNOTATION_REF_NAME,
  ANNOTATION_VERITY_ROOT_HASH,
  IMAGE_LAYOUT_VERSION,
  MEDIA_TYPE_IMAGE_CONFIG,
  MEDIA_TYPE_IMAGE_INDEX,
  MEDIA_TYPE_IMAGE_MANIFEST,
  MEDIA_TYPE_SQUASHFS_ZSTD,
} from './media-types.js';
import { checkRefName } from './reference.js';

export interface WriteLayerSpec {
  /** File to copy in as the layer blob. */
  readonly file: string;
  /** Default: `application/vnd.stacker.image.layer.squashfs+zstd`. */
  readonly mediaType?: string;
  /** Written verbatim (not validated) under `annotationName`. */
  readonly rootHash?: string;
  /** Default: the current `io.stackeroci.stacker.atomfs_verity_root_hash`. */
  readonly annotationName?: string;
  /** Extra layer annotations. */
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface WriteImageSpec {
  readonly tag: string;
  /** Bottom-most first, as in an OCI manifest. */
  readonly layers: readonly WriteLayerSpec[];
  /** Image config JSON; default: a minimal linux config whose diff_ids are the layer digests. */
  readonly config?: object;
  /** Wrap the manifest in this many nested image-index blobs (default 0). */
  readonly nest?: number;
}

export interface WrittenImage {
  readonly tag: string;
  /** The descriptor added to index.json. */
  readonly indexEntry: Descriptor;
  readonly manifestDigest: string;
  readonly manifestPath: string;
  readonly configDigest: string;
  /** Bottom-most first. */
  readonly layers: readonly { readonly digest: string; readonly size: number; readonly path: string }[];
}

interface Stored {
  readonly digest: string;
  readonly size: number;
  readonly path: string;
}

function goArch(): string {
  if (process.arch === 'x64') return 'amd64';
  return process.arch;
}

async function hashFile(file: string): Promise<{ hex: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    const buf = chunk as Buffer;
    size += buf.length;
    hash.update(buf);
  }
  return { hex: hash.digest('hex'), size };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Write-to-temp then rename, so a reader never sees a half-written blob or index. */
async function atomicWrite(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(16).slice(2)}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

async function putBytes(blobsDir: string, bytes: Uint8Array): Promise<Stored> {
  const hex = createHash('sha256').update(bytes).digest('hex');
  const path = join(blobsDir, hex);
  if (!(await exists(path))) await atomicWrite(path, bytes);
  return { digest: `sha256:${hex}`, size: bytes.length, path };
}

async function putFile(blobsDir: string, file: string): Promise<Stored> {
  const { hex, size } = await hashFile(file);
  const path = join(blobsDir, hex);
  if (!(await exists(path))) {
    const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(16).slice(2)}`;
    await copyFile(file, tmp);
    await rename(tmp, path);
  }
  return { digest: `sha256:${hex}`, size, path };
}

/** Add (or replace) one tag in the layout at `dir`, creating the layout if needed. */
export async function writeLayout(dir: string, spec: WriteImageSpec): Promise<WrittenImage> {
  checkRefName(spec.tag);
  const blobsDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });
  const layoutFile = join(dir, 'oci-layout');
  if (!(await exists(layoutFile))) await atomicWrite(layoutFile, JSON.stringify({ imageLayoutVersion: IMAGE_LAYOUT_VERSION }));

  // Keep existing index.json entries verbatim (unknown fields included), minus the tag we replace.
  const indexPath = join(dir, 'index.json');
  let entries: unknown[] = [];
  let indexDoc: Record<string, unknown> = { schemaVersion: 2, mediaType: MEDIA_TYPE_IMAGE_INDEX, manifests: entries };
  if (await exists(indexPath)) {
    const bytes = await readBoundedFile(indexPath, DEFAULT_MAX_JSON_BYTES, {
      fail: (problem) => {
        throw new LayoutError(indexPath, problem);
      },
      tooLarge: (size) => {
        throw new LayoutError(indexPath, `${size} bytes is too large`);
      },
    });
    const typed = parseImageIndex(bytes, indexPath); // validates before we rewrite it
    indexDoc = parseJson(bytes, indexPath) as Record<string, unknown>;
    const raw = (indexDoc['manifests'] ?? []) as unknown[];
    entries = raw.filter((_, i) => (typed.manifests[i] === undefined ? undefined : refNameOf(typed.manifests[i] as Descriptor)) !== spec.tag);
  }

  const layers: Stored[] = [];
  const layerDescs: Descriptor[] = [];
  for (const l of spec.layers) {
    const stored = await putFile(blobsDir, l.file);
    layers.push(stored);
    const annotations: Record<string, string> = { ...(l.annotations ?? {}) };
    if (l.rootHash !== undefined) annotations[l.annotationName ?? ANNOTATION_VERITY_ROOT_HASH] = l.rootHash;
    layerDescs.push({
      mediaType: l.mediaType ?? MEDIA_TYPE_SQUASHFS_ZSTD,
      digest: stored.digest,
      size: stored.size,
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    });
  }

  const config = spec.config ?? {
    architecture: goArch(),
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    history: [],
  };
  const configBlob = await putBytes(blobsDir, Buffer.from(JSON.stringify(config)));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_IMAGE_MANIFEST,
    config: { mediaType: MEDIA_TYPE_IMAGE_CONFIG, digest: configBlob.digest, size: configBlob.size },
    layers: layerDescs,
  };
  const manifestBlob = await putBytes(blobsDir, Buffer.from(JSON.stringify(manifest)));
  let top: Descriptor = { mediaType: MEDIA_TYPE_IMAGE_MANIFEST, digest: manifestBlob.digest, size: manifestBlob.size };
  for (let i = 0; i < (spec.nest ?? 0); i++) {
    const nested = await putBytes(blobsDir, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_IMAGE_INDEX, manifests: [top] })));
    top = { mediaType: MEDIA_TYPE_IMAGE_INDEX, digest: nested.digest, size: nested.size };
  }
  const indexEntry: Descriptor = { ...top, annotations: { [ANNOTATION_REF_NAME]: spec.tag } };
  entries.push(indexEntry);
  indexDoc['manifests'] = entries;
  await atomicWrite(indexPath, JSON.stringify(indexDoc));

  return {
    tag: spec.tag,
    indexEntry,
    manifestDigest: manifestBlob.digest,
    manifestPath: manifestBlob.path,
    configDigest: configBlob.digest,
    layers,
  };
}
