import { extract as extractTree, type ExtractOptions as TreeExtractOptions, type ExtractResult } from '@atomfs/tree';
import type { Erofs } from './erofs.js';
import type { ErofsInode } from './inode.js';
import { erofsTree } from './tree.js';

export type { ExtractResult, ExtractSkip } from '@atomfs/tree';
export type ExtractOptions = Omit<TreeExtractOptions<ErofsInode>, 'content'>;

/**
 * Extract the image (or `subdir` of it) into `dest` (created if missing), restoring what
 * `fsck.erofs --extract` restores: contents (runs of zero blocks become holes), modes, owners
 * when root, mtimes with their nanoseconds, xattrs, device numbers, hard links.
 */
export function extract(fs: Erofs, dest: string | Buffer, options: ExtractOptions = {}): Promise<ExtractResult> {
  return extractTree(erofsTree(fs), dest, options);
}
