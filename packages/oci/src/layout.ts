/**
 * An OCI image layout directory (image-spec image-layout.md): `oci-layout` with
 * `{"imageLayoutVersion": "1.0.0"}`, a `blobs/` directory and an `index.json` file. Validated the
 * way umoci's OpenLayout does (which Go atomfs uses), with one-line messages naming the bad file.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DEFAULT_MAX_JSON_BYTES, readBoundedFile } from './bounded-read.js';
import { BlobTooLargeError, LayoutError, MalformedJsonError, quote } from './errors.js';
import { parseImageIndex, type ImageIndex } from './image-index.js';
import { describeType, parseJson } from './json-fields.js';
import { IMAGE_LAYOUT_VERSION } from './media-types.js';
import { refNameOf } from './descriptor.js';

export interface OciLayout {
  /** Absolute path of the layout directory. */
  readonly dir: string;
}

export interface ReadLimits {
  /** Upper bound for any JSON document we load (index.json, index and manifest blobs). */
  readonly maxJsonBytes?: number;
}

/** oci-layout is one tiny object; anything big is not a layout marker. */
const MAX_OCI_LAYOUT_BYTES = 64 * 1024;

async function statOrNull(path: string): Promise<import('node:fs').Stats | null> {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new LayoutError(path, `cannot be examined (${err instanceof Error ? err.message : String(err)})`);
  }
}

async function checkLayoutMarker(path: string): Promise<void> {
  const bytes = await readBoundedFile(path, MAX_OCI_LAYOUT_BYTES, {
    fail: (problem) => {
      throw new LayoutError(path, problem === 'does not exist' ? 'missing file (not an OCI image layout?)' : problem);
    },
    tooLarge: (size) => {
      throw new LayoutError(path, `${size} bytes is far too large for an oci-layout file`);
    },
  });
  let doc: unknown;
  try {
    doc = parseJson(bytes, path);
  } catch (err) {
    if (err instanceof MalformedJsonError) throw new LayoutError(path, err.problem);
    throw err;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new LayoutError(path, `expected a JSON object, got ${describeType(doc)}`);
  }
  if (!Object.prototype.hasOwnProperty.call(doc, 'imageLayoutVersion')) {
    throw new LayoutError(path, 'missing field imageLayoutVersion');
  }
  const version = (doc as { imageLayoutVersion: unknown }).imageLayoutVersion;
  if (typeof version !== 'string') {
    throw new LayoutError(path, `imageLayoutVersion must be a string, got ${describeType(version)}`);
  }
  if (version !== IMAGE_LAYOUT_VERSION) {
    throw new LayoutError(path, `unsupported imageLayoutVersion ${quote(version)} (expected "${IMAGE_LAYOUT_VERSION}")`);
  }
}

/** Validate the layout directory structure; does not read index.json yet. */
export async function openLayout(dir: string): Promise<OciLayout> {
  const abs = resolve(dir);
  const st = await statOrNull(abs);
  if (st === null) throw new LayoutError(abs, 'directory does not exist');
  if (!st.isDirectory()) throw new LayoutError(abs, 'is not a directory');

  await checkLayoutMarker(join(abs, 'oci-layout'));

  const blobs = join(abs, 'blobs');
  const blobsSt = await statOrNull(blobs);
  if (blobsSt === null) throw new LayoutError(blobs, 'missing directory');
  if (!blobsSt.isDirectory()) throw new LayoutError(blobs, 'is not a directory');

  const index = join(abs, 'index.json');
  const indexSt = await statOrNull(index);
  if (indexSt === null) throw new LayoutError(index, 'missing file');
  if (indexSt.isDirectory()) throw new LayoutError(index, 'is a directory, expected a file');
  if (!indexSt.isFile()) throw new LayoutError(index, 'is not a regular file');
  return { dir: abs };
}

/** Load and type-check the top-level index.json. */
export async function readTopLevelIndex(layout: OciLayout, limits: ReadLimits = {}): Promise<ImageIndex> {
  const limit = limits.maxJsonBytes ?? DEFAULT_MAX_JSON_BYTES;
  const path = join(layout.dir, 'index.json');
  const bytes = await readBoundedFile(path, limit, {
    fail: (problem) => {
      throw new LayoutError(path, problem);
    },
    tooLarge: (size) => {
      throw new BlobTooLargeError(path, size, limit, 'file');
    },
  });
  return parseImageIndex(bytes, path);
}

/** Every tag (ref.name annotation) of the top-level index, in index order, duplicates kept. */
export async function listTags(dir: string, limits: ReadLimits = {}): Promise<string[]> {
  const index = await readTopLevelIndex(await openLayout(dir), limits);
  const tags: string[] = [];
  for (const d of index.manifests) {
    const name = refNameOf(d);
    if (name !== undefined) tags.push(name);
  }
  return tags;
}
