import { writeSync } from 'node:fs';
import { readFully, type ImageTree, type TreeNode } from './image-tree.js';

/**
 * How extraction gets each regular file's bytes into the file it created. A format can bring its
 * own (squashfs decodes blocks ahead on a second thread); `readContent` serves any tree.
 */
export interface FileContent<N> {
  /**
   * Write all of the file's data to `fd` (a new, empty file); all-zero blocks may be left as
   * holes. True when the data ends in a hole (the file then needs its size set).
   */
  write(file: N, size: number, fd: number): boolean;
  /** Extraction will not write this file (its directory or its creation failed). */
  skip(file: N): void;
  /** The extraction is over (also when it failed). */
  close(): Promise<void>;
}

/** Data is read in pieces of about this size: a file never sits in memory whole. */
const PIECE_BYTES = 1 << 20;

/** The file's bytes read with `readInto`, a piece at a time; all-zero blocks become holes. */
export function readContent<N extends TreeNode>(tree: ImageTree<N>): FileContent<N> {
  const bs = tree.blockSize;
  const piece = Math.max(bs, PIECE_BYTES - (PIECE_BYTES % bs));
  let buf: Buffer | undefined;
  return {
    write(file, size, fd) {
      buf ??= Buffer.allocUnsafe(piece);
      let endsInHole = false;
      for (let pos = 0; pos < size; pos += piece) {
        const n = Math.min(piece, size - pos);
        readFully(tree, file, pos, buf.subarray(0, n));
        for (let at = 0; at < n; at += bs) {
          const block = buf.subarray(at, Math.min(at + bs, n));
          endsInHole = isZero(block);
          if (!endsInHole) writeAll(fd, block, pos + at);
        }
      }
      return endsInHole;
    },
    skip() {},
    async close() {},
  };
}

/** pwrite all of `data` at `position`. */
export function writeAll(fd: number, data: Buffer, position: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done);
}

export function isZero(b: Buffer): boolean {
  for (let i = 0; i + 8 <= b.length; i += 8) if (b.readBigUInt64LE(i) !== 0n) return false;
  for (let i = b.length & ~7; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
