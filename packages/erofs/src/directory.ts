import { CorruptImageError } from './errors.js';

/** One directory entry (erofs_dirent: nid u64, nameoff u16, file_type u8, reserved u8). */
export interface DirEntry {
  name: Buffer;
  nid: number;
  /** EROFS_FT_*: 1 reg, 2 dir, 3 chr, 4 blk, 5 fifo, 6 sock, 7 symlink. */
  fileType: number;
}

const DIRENT_SIZE = 12;

/**
 * Parse one directory block: `count` dirents (the first one's nameoff / 12), then the names,
 * each ending where the next begins; the last ends at the block's end or at its first NUL.
 * `base` is the block's offset in the directory (for messages).
 */
export function parseDirBlock(block: Buffer, base: number, out: DirEntry[]): void {
  if (block.length < DIRENT_SIZE) throw new CorruptImageError(`directory block at ${base} is ${block.length} bytes, too short for an entry`, undefined);
  const first = block.readUInt16LE(8);
  if (first < DIRENT_SIZE || first % DIRENT_SIZE !== 0 || first > block.length) {
    throw new CorruptImageError(`directory block at ${base}: first name offset ${first} is invalid`, undefined);
  }
  const count = first / DIRENT_SIZE;
  for (let i = 0; i < count; i++) {
    const at = i * DIRENT_SIZE;
    const nameoff = block.readUInt16LE(at + 8);
    let nameEnd: number;
    if (i + 1 < count) {
      nameEnd = block.readUInt16LE(at + DIRENT_SIZE + 8);
    } else {
      nameEnd = block.indexOf(0, nameoff);
      if (nameEnd < 0) nameEnd = block.length;
    }
    if (nameoff < first || nameEnd <= nameoff || nameEnd > block.length) {
      throw new CorruptImageError(`directory block at ${base}: entry ${i} has name bytes [${nameoff}, ${nameEnd}) outside its block`, undefined);
    }
    const nid = Number(block.readBigUInt64LE(at));
    if (!Number.isSafeInteger(nid)) throw new CorruptImageError(`directory block at ${base}: entry ${i} has nid ${block.readBigUInt64LE(at)}`, undefined);
    out.push({ name: Buffer.from(block.subarray(nameoff, nameEnd)), nid, fileType: block[at + 10]! });
  }
}

/** Compare raw names as the kernel does (memcmp, then length). */
export function compareNames(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}
