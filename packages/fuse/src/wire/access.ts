/** fuse_access_in (ACCESS) and fuse_interrupt_in (INTERRUPT). */
import { requireBytes } from './bytes.js';

export const ACCESS_IN_SIZE = 8;
export const INTERRUPT_IN_SIZE = 8;

/** R_OK 4, W_OK 2, X_OK 1, F_OK 0. */
export function decodeAccessIn(body: Buffer): number {
  requireBytes(body, 0, ACCESS_IN_SIZE, 'fuse_access_in');
  return body.readUInt32LE(0);
}

/** Returns the `unique` of the request being interrupted. */
export function decodeInterruptIn(body: Buffer): bigint {
  requireBytes(body, 0, INTERRUPT_IN_SIZE, 'fuse_interrupt_in');
  return body.readBigUInt64LE(0);
}
