/** fuse_access_in (ACCESS). INTERRUPT is never decoded: an immutable filesystem answers at once. */
import { requireBytes } from './bytes.js';

export const ACCESS_IN_SIZE = 8;

/** R_OK 4, W_OK 2, X_OK 1, F_OK 0. */
export function decodeAccessIn(body: Buffer): number {
  requireBytes(body, 0, ACCESS_IN_SIZE, 'fuse_access_in');
  return body.readUInt32LE(0);
}
