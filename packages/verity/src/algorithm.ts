import { createHash, getHashes } from 'node:crypto';

/**
 * Hash algorithms: the superblock names one (NUL-padded, lower case as the kernel wants); we accept
 * any name node:crypto (OpenSSL) knows and that produces a fixed-size digest. The digest size is
 * measured, not tabulated, so it always matches what we will compute.
 */
const digestSizes = new Map<string, number | null>();

/** Digest size in bytes of `name`, or null when node:crypto cannot compute it. */
export function digestSizeOf(name: string): number | null {
  const key = name.toLowerCase();
  const known = digestSizes.get(key);
  if (known !== undefined) return known;
  let size: number | null = null;
  // Names are checked against the list first: createHash on arbitrary superblock bytes would
  // otherwise be an OpenSSL lookup driven by untrusted input (harmless, but noisy on failure).
  if (/^[a-z0-9-]{1,31}$/.test(key) && getHashes().includes(key)) {
    try {
      // Extendable-output functions (shake*) have a default length; refuse them: the digest size
      // must be a property of the algorithm, as it is for the kernel's crypto API.
      if (!key.startsWith('shake')) size = createHash(key).digest().length;
    } catch {
      size = null;
    }
  }
  digestSizes.set(key, size);
  return size;
}
