import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { OciError, parseImageRef, resolveImage, type ResolvedImage } from '@atomfs/oci';
import { CommandError, UsageError } from '../errors.js';

export interface ResolveRefOptions {
  /** docker:// references: plain HTTP to a loopback registry. */
  insecure?: boolean;
}

/**
 * OCIDIR:TAG resolved to its image, with Go atomfs's messages for a bad reference or directory;
 * or docker://HOST[:PORT]/REPO:TAG (or @sha256:…) resolved over the registry API, its layers
 * read through the host's blob cache (ociDir is then `docker://HOST/REPO`).
 */
export async function resolveRef(arg: string, options: ResolveRefOptions = {}): Promise<{ ociDir: string; tag: string; image: ResolvedImage }> {
  if (arg.startsWith('docker://')) return resolveRemoteRef(arg, options);
  let ref;
  try {
    ref = parseImageRef(arg);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (!existsSync(ref.dir)) throw new CommandError(`oci directory ${ref.dir} does not exist: Usage: atomfs mount [--writeable] [--persist=/tmp/upperdir] ocidir:tag target`);
  try {
    const image = await resolveImage(ref.dir, ref.tag);
    return { ociDir: resolve(ref.dir), tag: ref.tag, image };
  } catch (err) {
    if (err instanceof OciError) throw new CommandError(err.message);
    throw err;
  }
}

async function resolveRemoteRef(arg: string, options: ResolveRefOptions): Promise<{ ociDir: string; tag: string; image: ResolvedImage }> {
  const { RegistryError, RemoteRefError, resolveRemoteImage, trimFor } = await import('@atomfs/registry');
  try {
    const image = await resolveRemoteImage(arg, { insecure: options.insecure === true });
    trimFor(image.layers.map((l) => l.remote));
    return { ociDir: `docker://${image.ref.registry}/${image.ref.repository}`, tag: image.ref.digest !== undefined ? `@${image.ref.digest}` : image.tag, image };
  } catch (err) {
    if (err instanceof RemoteRefError) throw new UsageError(err.message);
    if (err instanceof RegistryError || err instanceof OciError) throw new CommandError(err.message);
    throw err;
  }
}
