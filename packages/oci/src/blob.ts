/** Reading JSON blobs (manifests, nested indexes) with their size and sha256 digest checked. */
import { createHash } from 'node:crypto';
import { readBoundedFile } from './bounded-read.js';
import type { Descriptor } from './descriptor.js';
import { blobPath, parseDigest, type Digest } from './digest.js';
import { BlobError, BlobTooLargeError, DigestMismatchError, SizeMismatchError } from './errors.js';

export interface VerifiedBlob {
  readonly digest: Digest;
  readonly path: string;
  readonly bytes: Buffer;
}

/**
 * Load the blob a descriptor points to, refusing anything over `limit` bytes (checked on the
 * descriptor's claimed size first, then on the file itself), then check size and sha256.
 * `where` says which document held the descriptor (for digest-syntax messages).
 */
export async function readVerifiedBlob(layoutDir: string, desc: Descriptor, where: string, limit: number): Promise<VerifiedBlob> {
  const digest = parseDigest(desc.digest, where);
  const path = blobPath(layoutDir, digest);
  if (desc.size > limit) throw new BlobTooLargeError(path, desc.size, limit);
  const bytes = await readBoundedFile(path, limit, {
    fail: (problem) => {
      throw new BlobError(path, problem);
    },
    tooLarge: (size) => {
      throw new BlobTooLargeError(path, size, limit);
    },
  });
  if (bytes.length !== desc.size) throw new SizeMismatchError(path, desc.size, bytes.length);
  const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (actual !== digest.text) throw new DigestMismatchError(path, digest.text, actual);
  return { digest, path, bytes };
}
