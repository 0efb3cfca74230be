/**
 * A docker:// reference resolved to its image, in the shape the local layout reader gives
 * (@atomfs/oci ResolvedImage), so the same mount and read code serves both. The manifest bytes
 * are checked against the digest that names them and parsed by @atomfs/oci's own parser;
 * layer paths point into the blob cache, where the remote sources keep the blobs.
 */
import { createHash } from 'node:crypto';
import {
  DEFAULT_MAX_JSON_BYTES,
  DEFAULT_MAX_LAYERS,
  EmptyImageError,
  layerFromDescriptor,
  MEDIA_TYPE_IMAGE_INDEX,
  MEDIA_TYPE_IMAGE_MANIFEST,
  parseImageIndex,
  parseImageManifest,
  TooManyLayersError,
  type Descriptor,
  type Layer,
  type ResolvedImage,
} from '@atomfs/oci';
import { defaultCacheDir } from './cache.js';
import { RegistryClient, type RemoteRepository } from './client.js';
import { RegistryError, RemoteDigestError } from './errors.js';
import { findCredentials } from './auth.js';
import { formatRemoteRef, parseRemoteRef, type RemoteRef } from './reference.js';
import type { RemoteBlob } from './remote-source.js';

export interface RemoteResolveOptions {
  /** Plain HTTP to a loopback registry. */
  insecure?: boolean;
  /** Blob cache directory (default defaultCacheDir()). */
  cacheDir?: string;
  /** Auth file to take credentials from (default: the usual list, see auth.ts). */
  authFile?: string;
}

/** A layer of a remote image: an OCI Layer whose path is its place in the cache, plus where to fetch it. */
export interface RemoteLayer extends Layer {
  readonly remote: RemoteBlob;
}

export interface RemoteImage extends ResolvedImage {
  readonly ref: RemoteRef;
  readonly repo: RemoteRepository;
  readonly cacheDir: string;
  readonly layers: readonly RemoteLayer[];
}

const MANIFEST_ACCEPT = [MEDIA_TYPE_IMAGE_MANIFEST, MEDIA_TYPE_IMAGE_INDEX].join(', ');

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export async function resolveRemoteImage(arg: string, options: RemoteResolveOptions = {}): Promise<RemoteImage> {
  const ref = parseRemoteRef(arg);
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const found = findCredentials(ref.registry, options.authFile !== undefined ? [options.authFile] : undefined);
  const repo: RemoteRepository = {
    registry: ref.registry,
    repository: ref.repository,
    ...(options.insecure === true ? { insecure: true } : {}),
    ...(found !== undefined ? { authFile: found.file } : options.authFile !== undefined ? { authFile: options.authFile } : {}),
  };
  const client = new RegistryClient(repo);
  const name = formatRemoteRef(ref);

  let { bytes, mediaType, digest } = await fetchManifest(client, ref.reference, ref.digest, name);
  if (mediaType === MEDIA_TYPE_IMAGE_INDEX) {
    const index = parseImageIndex(bytes, `${name} (index ${digest})`);
    const manifests = index.manifests.filter((d) => d.mediaType === MEDIA_TYPE_IMAGE_MANIFEST);
    if (manifests.length !== 1) {
      throw new RegistryError(`${name}: the tag points to an index of ${index.manifests.length} entries (platform selection is not supported)`);
    }
    const d = manifests[0]!;
    ({ bytes, mediaType, digest } = await fetchManifest(client, d.digest, d.digest, name));
    if (bytes.length !== d.size) throw new RemoteDigestError(`${name}: manifest ${d.digest} has ${bytes.length} bytes, the index says ${d.size}`);
  }
  if (mediaType !== MEDIA_TYPE_IMAGE_MANIFEST) {
    throw new RegistryError(`${name}: not an OCI image manifest (${JSON.stringify(mediaType)}); push stacker images with skopeo, which keeps their OCI media types`);
  }
  const where = `${name} (manifest ${digest})`;
  const manifest = parseImageManifest(bytes, where);
  if (manifest.layers.length === 0) throw new EmptyImageError(name, digest);
  if (manifest.layers.length > DEFAULT_MAX_LAYERS) throw new TooManyLayersError(name, digest, manifest.layers.length, DEFAULT_MAX_LAYERS);
  if (manifest.config !== undefined) await checkConfig(client, manifest.config, where);

  const bottomFirst = manifest.layers.map((d, i): RemoteLayer => {
    const layer = layerFromDescriptor(cacheDir, d, `${where} layers[${i}]`);
    return { ...layer, remote: { ...repo, digest: layer.digest, size: layer.size, cacheDir } };
  });
  const manifestDescriptor: Descriptor = { mediaType: MEDIA_TYPE_IMAGE_MANIFEST, digest, size: bytes.length };
  return {
    layoutDir: cacheDir,
    tag: ref.tag ?? ref.reference,
    manifestDescriptor,
    manifestDigest: digest,
    manifest,
    layers: bottomFirst.reverse(),
    ref,
    repo,
    cacheDir,
  };
}

/** GET a manifest; its bytes must hash to `pinned` (a digest reference) and to what the registry says. */
async function fetchManifest(client: RegistryClient, reference: string, pinned: string | undefined, name: string): Promise<{ bytes: Buffer; mediaType: string; digest: string }> {
  const res = await client.get({ path: `manifests/${reference}`, headers: { Accept: MANIFEST_ACCEPT }, maxBytes: DEFAULT_MAX_JSON_BYTES });
  const digest = sha256(res.body);
  if (pinned !== undefined && digest !== pinned) throw new RemoteDigestError(`${name}: manifest digest mismatch: asked for ${pinned}, content hashes to ${digest}`);
  const said = res.headers['docker-content-digest'];
  if (typeof said === 'string' && said !== '' && said !== digest) throw new RemoteDigestError(`${name}: manifest digest mismatch: the registry says ${said}, content hashes to ${digest}`);
  const ct = String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
  let mediaType = ct;
  // The body's own mediaType wins over a generic Content-Type (the spec makes it required for indexes).
  try {
    const body = JSON.parse(res.body.toString('utf8')) as { mediaType?: unknown };
    if (typeof body.mediaType === 'string') mediaType = body.mediaType;
  } catch {
    // parseImageManifest reports bad JSON with its position
  }
  return { bytes: res.body, mediaType, digest };
}

/** The image config must exist with its size and digest (as the layout reader checks it). */
async function checkConfig(client: RegistryClient, config: Descriptor, where: string): Promise<void> {
  if (config.size > DEFAULT_MAX_JSON_BYTES) throw new RegistryError(`${where}: config of ${config.size} bytes is too large`);
  const res = await client.get({ path: `blobs/${config.digest}`, maxBytes: DEFAULT_MAX_JSON_BYTES });
  const digest = sha256(res.body);
  if (res.body.length !== config.size || digest !== config.digest) {
    throw new RemoteDigestError(`${where}: config blob ${config.digest} does not match (got ${res.body.length} bytes hashing to ${digest})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(res.body.toString('utf8'));
  } catch (err) {
    throw new RegistryError(`${where}: config blob ${config.digest} is not JSON (${(err as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new RegistryError(`${where}: config blob ${config.digest} is not a JSON object`);
}
