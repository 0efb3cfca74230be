/** fuse_getxattr_in (GETXATTR, LISTXATTR; 8 bytes + name for GETXATTR) and fuse_getxattr_out. */
import { readCString, requireBytes } from './bytes.js';

export const GETXATTR_IN_SIZE = 8;
export const GETXATTR_OUT_SIZE = 8;

export interface GetxattrIn {
  /** Caller's buffer size; 0 ⇒ "how big is it?" (answer with fuse_getxattr_out). */
  readonly size: number;
  /** Attribute name (GETXATTR only; empty for LISTXATTR). */
  readonly name: Buffer;
}

export function decodeGetxattrIn(body: Buffer, withName: boolean): GetxattrIn {
  requireBytes(body, 0, GETXATTR_IN_SIZE, 'fuse_getxattr_in');
  const size = body.readUInt32LE(0);
  const name = withName ? readCString(body, GETXATTR_IN_SIZE, 'GETXATTR') : Buffer.alloc(0);
  return { size, name };
}

export function encodeGetxattrOut(buf: Buffer, offset: number, size: number): void {
  buf.writeUInt32LE(size, offset);
  buf.writeUInt32LE(0, offset + 4);
}
