/**
 * Optional, explicit check of a layer blob's sha256 against its digest. Go atomfs never does this
 * (it relies on dm-verity alone); it costs a full read of the layer, so callers ask for it.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { parseDigest } from './digest.js';
import { BlobError, DigestMismatchError, SizeMismatchError } from './errors.js';

export interface LayerBlobRef {
  readonly digest: string;
  readonly path: string;
  /** When given, the blob must have exactly this many bytes. */
  readonly size?: number;
}

export async function verifyLayerDigest(layer: LayerBlobRef): Promise<void> {
  const digest = parseDigest(layer.digest, layer.path);
  let handle;
  try {
    handle = await open(layer.path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BlobError(layer.path, code === 'ENOENT' ? 'does not exist' : `cannot be opened (${String(err)})`);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new BlobError(layer.path, 'is not a regular file');
    if (layer.size !== undefined && st.size !== layer.size) throw new SizeMismatchError(layer.path, layer.size, st.size);
    const hash = createHash('sha256');
    let total = 0;
    for await (const chunk of handle.createReadStream({ autoClose: false, highWaterMark: 1 << 20 })) {
      const buf = chunk as Buffer;
      total += buf.length;
      hash.update(buf);
    }
    if (layer.size !== undefined && total !== layer.size) throw new SizeMismatchError(layer.path, layer.size, total);
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== digest.text) throw new DigestMismatchError(layer.path, digest.text, actual);
  } finally {
    await handle.close();
  }
}
