/**
 * Content digests (`<algorithm>:<encoded>`, OCI image-spec descriptor.md). A digest becomes a file
 * name under blobs/, so it is validated strictly before any path is built from it: no `/`, no `..`,
 * exactly 64 lowercase hex characters for sha256.
 */
import { join } from 'node:path';
import { InvalidDigestError, UnsupportedDigestAlgorithmError } from './errors.js';

export interface Digest {
  /** Always `sha256`: the only algorithm we verify. */
  readonly algorithm: 'sha256';
  /** 64 lowercase hex characters. */
  readonly hex: string;
  /** `sha256:<hex>`. */
  readonly text: string;
}

// Grammar from the image spec: algorithm-component (separator component)* ":" [a-zA-Z0-9=_-]+
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const SHA256_HEX = /^[a-f0-9]{64}$/;

/** Parse and validate a digest string; `where` names the file/field it came from, for the message. */
export function parseDigest(text: string, where: string): Digest {
  if (!DIGEST_GRAMMAR.test(text)) {
    throw new InvalidDigestError(text, where, 'not of the form <algorithm>:<encoded>');
  }
  const colon = text.indexOf(':');
  const algorithm = text.slice(0, colon);
  const encoded = text.slice(colon + 1);
  if (algorithm !== 'sha256') {
    throw new UnsupportedDigestAlgorithmError(text, algorithm, where);
  }
  if (!SHA256_HEX.test(encoded)) {
    throw new InvalidDigestError(text, where, 'sha256 needs exactly 64 lowercase hex characters');
  }
  return { algorithm: 'sha256', hex: encoded, text };
}

/** `<layoutDir>/blobs/sha256/<hex>`: safe because `parseDigest` allowed only hex. */
export function blobPath(layoutDir: string, digest: Digest): string {
  return join(layoutDir, 'blobs', digest.algorithm, digest.hex);
}
