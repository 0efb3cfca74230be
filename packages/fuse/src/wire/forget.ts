/** fuse_forget_in (FORGET) and fuse_batch_forget_in + fuse_forget_one[] (BATCH_FORGET). */
import { FuseProtocolError } from '../errors.js';
import { requireBytes } from './bytes.js';

export const FORGET_IN_SIZE = 8;
export const BATCH_FORGET_IN_SIZE = 8;
export const FORGET_ONE_SIZE = 16;

export interface ForgetOne {
  readonly nodeid: bigint;
  readonly nlookup: bigint;
}

export function decodeForgetIn(body: Buffer): bigint {
  requireBytes(body, 0, FORGET_IN_SIZE, 'fuse_forget_in');
  return body.readBigUInt64LE(0);
}

export function decodeBatchForgetIn(body: Buffer): ForgetOne[] {
  requireBytes(body, 0, BATCH_FORGET_IN_SIZE, 'fuse_batch_forget_in');
  const count = body.readUInt32LE(0);
  // The count comes from the kernel, but never trust it beyond the bytes actually present.
  if (BATCH_FORGET_IN_SIZE + count * FORGET_ONE_SIZE > body.length) {
    throw new FuseProtocolError(`BATCH_FORGET: count ${count} exceeds request length ${body.length}`);
  }
  const out: ForgetOne[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const p = BATCH_FORGET_IN_SIZE + i * FORGET_ONE_SIZE;
    out[i] = { nodeid: body.readBigUInt64LE(p), nlookup: body.readBigUInt64LE(p + 8) };
  }
  return out;
}
