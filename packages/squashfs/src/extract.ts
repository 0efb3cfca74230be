import { extract as extractTree, isDestinationError, isZero, pathBytes, writeAll, type ExtractOptions as TreeExtractOptions, type ExtractResult, type FileContent } from '@atomfs/tree';
import { BlockPrefetch, prefetched } from './block-prefetch.js';
import type { FileInode, Inode } from './inode.js';
import type { SquashFS } from './squashfs.js';
import { squashfsTree } from './tree.js';

export type { ExtractResult, ExtractSkip } from '@atomfs/tree';

export interface ExtractOptions extends Omit<TreeExtractOptions<Inode>, 'content'> {
  /**
   * Decode file blocks ahead on a second thread (default: when the image is a file of 16 MiB
   * or more and there are two cores). false keeps everything on the calling thread.
   */
  parallel?: boolean;
}

/**
 * Extract the image into `dest` (which must not exist or be an empty directory), restoring what
 * unsquashfs -d restores: types, contents (holes stay holes), modes incl. setuid/setgid/sticky,
 * owners when root, mtimes, xattrs, device numbers, hard links.
 */
export async function extract(fs: SquashFS, dest: string | Buffer, options: ExtractOptions = {}): Promise<ExtractResult> {
  const prefetch = options.parallel === false ? undefined : BlockPrefetch.start(fs, pathBytes(options.subdir ?? '/'));
  return extractTree(squashfsTree(fs), dest, { ...options, content: blockContent(fs, prefetch) });
}

/**
 * File data a block at a time, all-zero blocks left as holes. With a prefetch thread, the blocks
 * of each file's first name come off its sequence, which follows the same walk: a file the
 * extraction gives up on has its blocks taken off all the same, keeping both threads in step;
 * a name that comes after (a hard link whose first name failed) reads its blocks itself.
 */
function blockContent(fs: SquashFS, prefetch: BlockPrefetch | undefined): FileContent<Inode> {
  const bs = fs.superblock.blockSize;
  /** Files whose blocks came (or were taken) off the prefetch sequence. */
  const taken = new Set<number>();
  const fromPrefetch = (inode: Inode): inode is FileInode => prefetch !== undefined && prefetched(inode) && !taken.has(inode.ref);
  const drain = (inode: FileInode, from: number): void => {
    const blocks = Math.ceil(inode.fileSize / bs);
    for (let i = from; i < blocks; i++) prefetch!.next(fs, inode, i, () => {});
  };
  return {
    write(inode, size, fd) {
      const file = inode as FileInode;
      const ahead = fromPrefetch(file);
      if (ahead) taken.add(file.ref);
      const blocks = Math.ceil(size / bs);
      let endsInHole = false;
      const put = (i: number, data: Buffer): void => {
        endsInHole = isZero(data);
        if (!endsInHole) writeAll(fd, data, i * bs);
      };
      let i = 0;
      try {
        for (; i < blocks; i++) {
          if (ahead) prefetch!.next(fs, file, i, (data) => put(i, data));
          else put(i, fs.readBlock(file, i));
        }
      } catch (err) {
        // The destination failed part-way: the helper has decoded the rest of this file's blocks.
        if (ahead && isDestinationError(err)) drain(file, i + 1);
        throw err;
      }
      return endsInHole;
    },
    skip(inode) {
      if (!fromPrefetch(inode)) return;
      taken.add(inode.ref);
      drain(inode, 0);
    },
    close: async () => prefetch?.stop(),
  };
}
