/**
 * Tag → manifest → layers, with the semantics of Go atomfs (umoci ResolveReference + LookupManifest):
 * roots are the top-level index.json entries whose ref.name annotation equals the tag; nested image
 * indexes are walked; exactly one manifest must result. Unlike Go we verify the digest of every
 * index, manifest and config blob we read, bound what a hostile layout can make us read, and check the layer
 * blobs exist with the size their descriptors claim (the layer CONTENT is left to dm-verity, or to
 * the explicit verifyLayerDigest).
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readVerifiedBlob } from './blob.js';
import { DEFAULT_MAX_JSON_BYTES } from './bounded-read.js';
import { parseDescriptor, refNameOf, type Descriptor } from './descriptor.js';
import { BadDescriptorError, BlobError, quote, EmptyImageError, IndexLimitError, NotAManifestError, SizeMismatchError, TooManyLayersError } from './errors.js';
import { parseImageIndex } from './image-index.js';
import { parseImageManifest, type ImageManifest } from './image-manifest.js';
import { JsonFields, parseJson } from './json-fields.js';
import { layerFromDescriptor, type Layer } from './layer.js';
import { openLayout, readTopLevelIndex, type ReadLimits } from './layout.js';
import { ANNOTATION_REF_NAME, MEDIA_TYPE_DESCRIPTOR, MEDIA_TYPE_IMAGE_INDEX, MEDIA_TYPE_IMAGE_MANIFEST } from './media-types.js';
import { checkRefName } from './reference.js';

export interface ResolveOptions extends ReadLimits {
  /** Most nested index (or descriptor) blobs on one path from index.json to the manifest. Default 8. */
  readonly maxIndexDepth?: number;
  /** Most nested index blobs read in total while resolving one tag. Default 64. */
  readonly maxIndexBlobs?: number;
  /** Most layers an image may have (DEFAULT_MAX_LAYERS). */
  readonly maxLayers?: number;
  /** Check each layer blob exists, is a regular file and has the descriptor's size. Default true. */
  readonly checkLayerBlobs?: boolean;
}

export interface ResolvedImage {
  /** Absolute layout directory. */
  readonly layoutDir: string;
  readonly tag: string;
  /** The descriptor that finally pointed at the manifest (possibly from a nested index). */
  readonly manifestDescriptor: Descriptor;
  /** `sha256:<hex>` of the manifest blob (verified). */
  readonly manifestDigest: string;
  readonly manifest: ImageManifest;
  /** TOP-most layer first (manifest order reversed), i.e. overlayfs lowerdir order. */
  readonly layers: readonly Layer[];
}

export const DEFAULT_MAX_INDEX_DEPTH = 8;
export const DEFAULT_MAX_INDEX_BLOBS = 64;
/**
 * The kernel's overlayfs stacks at most 500 lower layers (OVL_MAX_STACK), so no image with more
 * can be mounted by the kernel path, and our FUSE server would hold a descriptor, caches and a
 * reader per layer: refused before anything is opened.
 */
export const DEFAULT_MAX_LAYERS = 500;
/** How many known tags a "not found" message lists. */
const TAGS_IN_MESSAGE = 10;

interface Found {
  readonly desc: Descriptor;
  readonly where: string;
}

export async function resolveImage(layoutDir: string, tag: string, options: ResolveOptions = {}): Promise<ResolvedImage> {
  const limit = options.maxJsonBytes ?? DEFAULT_MAX_JSON_BYTES;
  const maxDepth = options.maxIndexDepth ?? DEFAULT_MAX_INDEX_DEPTH;
  const maxBlobs = options.maxIndexBlobs ?? DEFAULT_MAX_INDEX_BLOBS;
  const layout = await openLayout(layoutDir);
  const dir = layout.dir;
  const indexPath = join(dir, 'index.json');
  const index = await readTopLevelIndex(layout, { maxJsonBytes: limit });
  checkRefName(tag);

  const roots: Found[] = [];
  index.manifests.forEach((d, i) => {
    if (refNameOf(d) === tag) roots.push({ desc: d, where: `${indexPath} manifests[${i}]` });
  });
  if (roots.length === 0) {
    const known = index.manifests.map(refNameOf).filter((t): t is string => t !== undefined);
    const shown = known.slice(0, TAGS_IN_MESSAGE).map(quote).join(', ');
    const more = known.length > TAGS_IN_MESSAGE ? `, … (${known.length} in all)` : '';
    throw new BadDescriptorError(
      tag,
      'not found',
      `no entry in ${indexPath} has ${ANNOTATION_REF_NAME} ${quote(tag)}` + (known.length > 0 ? ` (tags: ${shown}${more})` : ' (it has no tags)'),
    );
  }

  // Walk the roots. We stop as soon as a second resolution shows up: the answer is "ambiguous"
  // whatever else the tree holds, and stopping bounds the work on a hostile wide tree.
  const found: Found[] = [];
  let blobsRead = 0;
  const walk = async (node: Found, depth: number): Promise<void> => {
    if (found.length > 1) return;
    const mt = node.desc.mediaType;
    if (mt !== MEDIA_TYPE_IMAGE_INDEX && mt !== MEDIA_TYPE_DESCRIPTOR) {
      // Manifests AND unknown types count as resolutions (umoci does the same); a non-manifest
      // resolution is rejected below with Go's message.
      found.push(node);
      return;
    }
    if (depth + 1 > maxDepth) {
      throw new IndexLimitError(tag, `image indexes nested more than ${maxDepth} levels deep (at ${node.where})`);
    }
    if (++blobsRead > maxBlobs) {
      throw new IndexLimitError(tag, `more than ${maxBlobs} nested index blobs to read (at ${node.where})`);
    }
    const blob = await readVerifiedBlob(dir, node.desc, node.where, limit);
    if (mt === MEDIA_TYPE_IMAGE_INDEX) {
      const nested = parseImageIndex(blob.bytes, blob.path);
      for (let i = 0; i < nested.manifests.length && found.length < 2; i++) {
        await walk({ desc: nested.manifests[i] as Descriptor, where: `${blob.path} manifests[${i}]` }, depth + 1);
      }
    } else {
      const f = new JsonFields(blob.path);
      await walk({ desc: parseDescriptor(f, parseJson(blob.bytes, blob.path), ''), where: blob.path }, depth + 1);
    }
  };
  for (const root of roots) {
    if (found.length > 1) break;
    await walk(root, 0);
  }

  if (found.length === 0) {
    throw new BadDescriptorError(tag, 'not found', `the index entries tagged ${quote(tag)} in ${indexPath} lead to no manifest`);
  }
  if (found.length > 1) {
    const cause = roots.length > 1 ? `${roots.length} entries in ${indexPath} carry this tag` : 'the tag points to an index with several manifests (platform selection is not supported)';
    throw new BadDescriptorError(tag, 'ambiguous', `more than one manifest matches: ${cause}`);
  }

  const target = found[0] as Found;
  if (target.desc.mediaType !== MEDIA_TYPE_IMAGE_MANIFEST) throw new NotAManifestError(target.desc.mediaType);
  const blob = await readVerifiedBlob(dir, target.desc, target.where, limit);
  const manifest = parseImageManifest(blob.bytes, blob.path);
  if (manifest.layers.length === 0) throw new EmptyImageError(tag, blob.digest.text);
  const maxLayers = options.maxLayers ?? DEFAULT_MAX_LAYERS;
  if (manifest.layers.length > maxLayers) throw new TooManyLayersError(tag, blob.digest.text, manifest.layers.length, maxLayers);
  // Go never reads the config; we check it like every other document we are pointed at, so a
  // tampered or missing config blob is not silently part of a "verified" image.
  if (manifest.config !== undefined) {
    const config = await readVerifiedBlob(dir, manifest.config, `${blob.path} config`, limit);
    new JsonFields(config.path).object(parseJson(config.bytes, config.path), '');
  }

  const bottomFirst = manifest.layers.map((d, i) => layerFromDescriptor(dir, d, `${blob.path} layers[${i}]`));
  if (options.checkLayerBlobs ?? true) {
    for (const layer of bottomFirst) await checkLayerBlob(layer);
  }
  return {
    layoutDir: dir,
    tag,
    manifestDescriptor: target.desc,
    manifestDigest: blob.digest.text,
    manifest,
    layers: bottomFirst.reverse(),
  };
}

/** Existence/type/size of a layer blob: cheap, and turns a truncated copy into a clear error early. */
async function checkLayerBlob(layer: Layer): Promise<void> {
  let st;
  try {
    st = await stat(layer.path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BlobError(layer.path, code === 'ENOENT' ? `layer ${layer.digest} is missing` : `layer ${layer.digest} cannot be examined (${String(err)})`);
  }
  if (!st.isFile()) throw new BlobError(layer.path, `layer ${layer.digest} is not a regular file`);
  if (st.size !== layer.size) throw new SizeMismatchError(layer.path, layer.size, st.size);
}
