import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { OciError, parseImageRef, resolveImage, type ResolvedImage } from '@atomfs/oci';
import { CommandError, UsageError } from '../errors.js';

/** OCIDIR:TAG resolved to its image, with Go atomfs's messages for a bad reference or directory. */
export async function resolveRef(arg: string): Promise<{ ociDir: string; tag: string; image: ResolvedImage }> {
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
