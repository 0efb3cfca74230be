import { execFileSync } from 'node:child_process';
import { walkTree } from '@atomfs/tree';
import { BufferSource, SquashFS, squashfsTree } from '../src/index.js';

export function mksquashfs(src: string, out: string, args: string[] = []): void {
  execFileSync('mksquashfs', [src, out, '-noappend', '-quiet', '-no-progress', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Open, walk, read every file and xattr: the full read surface of an image. */
export function readEverything(buf: Buffer): number {
  const fs = new SquashFS(new BufferSource(buf));
  let bytes = 0;
  for (const e of walkTree(squashfsTree(fs), '/')) {
    fs.xattrList(e.node);
    if (e.node.kind === 'file') bytes += fs.read(e.node, 0, e.node.fileSize).length;
    if (e.node.kind === 'dir') fs.lookup(e.node, 'entry-0077');
  }
  return bytes;
}

