import { VerityArgumentError } from './errors.js';
import { parseHex } from './uuid.js';

/** Decodes a trusted root hash given as hex text (as in the OCI annotation) or raw bytes. */
export function parseRootHash(value: string | Buffer, digestSize: number, label: string): Buffer {
  const bytes = typeof value === 'string' ? parseHex(value.trim()) : Buffer.from(value);
  if (bytes === null) throw new VerityArgumentError(label, `root hash ${JSON.stringify(value)} is not hex`);
  if (bytes.length !== digestSize) {
    throw new VerityArgumentError(label, `root hash has ${bytes.length} bytes, the algorithm produces ${digestSize}`);
  }
  return bytes;
}
