import { deviceNumbers, type NodeAttr } from '@atomfs/tree';

/**
 * The one JSON form of a listed entry, for `atomfs ls --json` and `atomfs sqfs ls --json`: one
 * object per line (NDJSON), so a listing of any size streams. JSON strings are Unicode: a name or
 * link target that is not UTF-8 also comes as its exact bytes in base64.
 */
export interface ListingRecord {
  path: string;
  pathBase64?: string;
  type: EntryType;
  /** Permission bits (0o7777), without the file type. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  nlink: number;
  inode: number;
  target?: string;
  targetBase64?: string;
  major?: number;
  minor?: number;
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'block' | 'char' | 'fifo' | 'socket';

/** The entry type of an st_mode's S_IFMT bits. */
const TYPES = new Map<number, EntryType>([
  [0o100000, 'file'],
  [0o040000, 'dir'],
  [0o120000, 'symlink'],
  [0o060000, 'block'],
  [0o020000, 'char'],
  [0o010000, 'fifo'],
  [0o140000, 'socket'],
]);

export function entryType(stMode: number): EntryType {
  return TYPES.get(stMode & 0o170000) ?? 'file';
}


/** What a lister knows of an entry: raw name bytes, and a device's rdev rather than its numbers. */
export interface ListedEntry extends Omit<ListingRecord, 'path' | 'pathBase64' | 'target' | 'targetBase64' | 'major' | 'minor'> {
  path: Buffer;
  target?: Buffer;
  rdev?: number;
}

/** The record of an entry from its attributes (any reader's NodeAttr, or the overlay's with its bigint ino). */
export function attrRecord(path: Buffer, a: Omit<NodeAttr, 'ino'> & { ino: number | bigint }, target: Buffer | undefined): ListingRecord {
  const type = entryType(a.mode);
  return listingRecord({
    path,
    type,
    mode: a.mode,
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    mtime: a.mtime,
    nlink: a.nlink,
    inode: Number(a.ino),
    rdev: a.rdev,
    ...(target !== undefined ? { target } : {}),
  });
}

export function listingRecord(e: ListedEntry): ListingRecord {
  const path = e.path.toString('utf8');
  const target = e.target?.toString('utf8');
  return {
    path,
    ...(notUtf8(path, e.path) ? { pathBase64: e.path.toString('base64') } : {}),
    type: e.type,
    mode: e.mode & 0o7777,
    uid: e.uid,
    gid: e.gid,
    size: e.size,
    mtime: e.mtime,
    nlink: e.nlink,
    inode: e.inode,
    ...(target !== undefined ? { target } : {}),
    ...(target !== undefined && notUtf8(target, e.target!) ? { targetBase64: e.target!.toString('base64') } : {}),
    ...((e.type === 'block' || e.type === 'char') && e.rdev !== undefined ? deviceNumbers(e.rdev) : {}),
  };
}

/** Whether `text` (decoded from `bytes`) lost bytes that are not UTF-8. */
export function notUtf8(text: string, bytes: Buffer): boolean {
  return text.includes('\ufffd') && !Buffer.from(text).equals(bytes);
}
