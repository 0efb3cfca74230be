import { execFileSync } from 'node:child_process';
import { walkTree } from '@atomfs/tree';
import { BufferSource, Erofs, erofsTree } from '../src/index.js';

export function mkfsErofs(src: string, out: string, args: string[] = []): void {
  execFileSync('mkfs.erofs', ['--quiet', ...args, out, src], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Open, walk, read every file (at most `maxFileBytes` of each), symlink and xattr. */
export function readEverything(buf: Buffer, maxFileBytes = 8 << 20): number {
  const fs = new Erofs(new BufferSource(buf));
  let bytes = 0;
  for (const e of walkTree(erofsTree(fs), '/')) {
    fs.xattrs(e.node);
    fs.attr(e.node);
    if (e.node.kind === 'file') {
      for (let pos = 0; pos < Math.min(e.node.size, maxFileBytes); pos += 1 << 20) bytes += fs.read(e.node, pos, 1 << 20).length;
    }
    if (e.node.kind === 'symlink') bytes += fs.readlink(e.node).length;
    if (e.node.kind === 'dir') fs.lookup(e.node, Buffer.from('entry-0077'));
  }
  return bytes;
}
