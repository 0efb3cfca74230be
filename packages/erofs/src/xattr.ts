import type { ByteSource } from './byte-source.js';
import { CorruptImageError } from './errors.js';
import type { ErofsInode } from './inode.js';
import type { Superblock } from './superblock.js';

/** One extended attribute: full name ("user.foo") and value. */
export interface Xattr {
  name: Buffer;
  value: Buffer;
}

/** e_name_index → the prefix the stored name is appended to. */
const PREFIXES: Record<number, Buffer> = {
  1: Buffer.from('user.'),
  2: Buffer.from('system.posix_acl_access'),
  3: Buffer.from('system.posix_acl_default'),
  4: Buffer.from('trusted.'),
  5: Buffer.from('lustre.'),
  6: Buffer.from('security.'),
};

const IBODY_HEADER = 12;
const ENTRY_HEADER = 4;
/** Bit of e_name_index naming a long prefix (xattr_prefixes): the low 7 bits index the table. */
const LONG_PREFIX = 0x80;

/** The short prefix a long one starts with (erofs_xattr_long_prefix.base_index), and its name. */
export function shortPrefix(index: number): Buffer | undefined {
  return PREFIXES[index];
}

/** Parse one erofs_xattr_entry at `pos`; returns it and the 4-aligned size it takes. */
function readEntry(source: ByteSource, pos: number, limit: number, longPrefixes: readonly Buffer[]): { xattr: Xattr; size: number } {
  if (pos + ENTRY_HEADER > limit) throw new CorruptImageError('xattr entry runs past the end of its xattr body', pos);
  const h = source.read(pos, ENTRY_HEADER);
  const nameLen = h[0]!;
  const index = h[1]!;
  const valueSize = h.readUInt16LE(2);
  const size = (ENTRY_HEADER + nameLen + valueSize + 3) & ~3;
  if (pos + ENTRY_HEADER + nameLen + valueSize > limit) throw new CorruptImageError('xattr entry runs past the end of its xattr body', pos);
  const prefix = index & LONG_PREFIX ? longPrefixes[index & ~LONG_PREFIX] : PREFIXES[index];
  if (prefix === undefined) throw new CorruptImageError(`xattr name index ${index} is unknown`, pos + 1);
  const body = source.read(pos + ENTRY_HEADER, nameLen + valueSize);
  return {
    xattr: { name: Buffer.concat([prefix, body.subarray(0, nameLen)]), value: Buffer.from(body.subarray(nameLen)) },
    size,
  };
}

/**
 * Every xattr of an inode, shared ones (by id into the shared xattr area) first, then the inline
 * ones, in stored order: the order the kernel's listxattr gives.
 */
export function readXattrs(source: ByteSource, sb: Superblock, inode: ErofsInode, longPrefixes: readonly Buffer[] = []): Xattr[] {
  if (inode.xattrSize === 0) return [];
  const start = inode.dataPos - inode.xattrSize;
  const end = inode.dataPos;
  if (inode.xattrSize < IBODY_HEADER || end > source.size) throw new CorruptImageError(`xattr body of inode ${inode.nid} lies outside the image`, start);
  const header = source.read(start, IBODY_HEADER);
  const sharedCount = header[4]!;
  let pos = start + IBODY_HEADER;
  if (pos + sharedCount * 4 > end) throw new CorruptImageError(`inode ${inode.nid} lists ${sharedCount} shared xattrs, more than its xattr body holds`, start + 4);
  const out: Xattr[] = [];
  const ids = source.read(pos, sharedCount * 4);
  pos += sharedCount * 4;
  const sharedBase = sb.xattrBlockAddr * sb.blockSize;
  for (let i = 0; i < sharedCount; i++) {
    const at = sharedBase + ids.readUInt32LE(i * 4) * 4;
    // A shared entry's extent is not recorded: bound it by the image.
    out.push(readEntry(source, at, source.size, longPrefixes).xattr);
  }
  while (pos < end) {
    const { xattr, size } = readEntry(source, pos, end, longPrefixes);
    out.push(xattr);
    pos += size;
  }
  return out;
}
