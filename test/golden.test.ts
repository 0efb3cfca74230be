/**
 * Fast tier, no root and no squashfs-tools needed: the committed golden images (test/golden/,
 * made by scripts/make-golden.sh, one per compressor) read exactly as `unsquashfs -lln` listed
 * them when they were made, and every regular file hashes as sha256sum hashed its source.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { SquashFS, squashfsTree, type Inode } from '@atomfs/squashfs';
import { deviceNumbers, walkTree } from '@atomfs/tree';

const GOLDEN = fileURLToPath(new URL('../../test/golden/', import.meta.url));

const TYPE_CHAR: Record<Inode['kind'], string> = { file: '-', dir: 'd', symlink: 'l', block: 'b', char: 'c', fifo: 'p', socket: 's' };

/** ls-style permissions, with setuid/setgid/sticky as ls shows them. */
function perms(kind: Inode['kind'], mode: number): string {
  const rwx = (bits: number, special: boolean, ch: string): string =>
    (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-');
  return TYPE_CHAR[kind] + rwx((mode >> 6) & 7, (mode & 0o4000) !== 0, 's') + rwx((mode >> 3) & 7, (mode & 0o2000) !== 0, 's') + rwx(mode & 7, (mode & 0o1000) !== 0, 't');
}

/** One listing line as fields, spacing aside (`7,  9` becomes `7,9`). */
function fields(line: string): string[] {
  return line.replace(/(\d+),\s+(\d+)/, '$1,$2').trim().split(/\s+/);
}

function ourLine(fs: SquashFS, path: string, inode: Inode): string {
  const a = fs.attr(inode);
  const size = inode.kind === 'block' || inode.kind === 'char' ? `${deviceNumbers(inode.rdev).major},${deviceNumbers(inode.rdev).minor}` : String(a.size);
  // unsquashfs prints local time; the golden listings were made, and are read, in UTC.
  const t = new Date(a.mtime * 1000).toISOString();
  const when = `${t.slice(0, 10)} ${t.slice(11, 16)}`;
  const name = `squashfs-root${path === '/' ? '' : path}`;
  const link = inode.kind === 'symlink' ? ` -> ${inode.target.toString()}` : '';
  return `${perms(inode.kind, inode.mode)} ${inode.uid}/${inode.gid} ${size} ${when} ${name}${link}`;
}

const images = readdirSync(GOLDEN).filter((f) => f.endsWith('.sqfs'));

test('the golden images are there (one per compressor)', () => {
  assert.deepEqual(images.sort(), ['tree-gzip.sqfs', 'tree-lz4.sqfs', 'tree-lzo.sqfs', 'tree-xz.sqfs', 'tree-zstd.sqfs']);
});

for (const img of images) {
  test(`${img}: the listing unsquashfs -lln gave, and the contents sha256sum gave`, { skip: process.env.TZ !== undefined && process.env.TZ !== 'UTC' ? 'the listings hold UTC times' : false }, async () => {
    const fs = SquashFS.open(join(GOLDEN, img));
    try {
      const ours = [...walkTree(squashfsTree(fs), '/')].map((e) => fields(ourLine(fs, e.path, e.node)));
      const want = readFileSync(join(GOLDEN, img.replace(/\.sqfs$/, '.unsquashfs-lln')), 'utf8').trimEnd().split('\n').map(fields);
      assert.deepEqual(ours, want);
      const sums = readFileSync(join(GOLDEN, 'tree.sha256sum'), 'utf8').trimEnd().split('\n');
      for (const line of sums) {
        const [sum, path] = [line.slice(0, 64), line.slice(66)];
        const data = await fs.paths.readFile(path);
        assert.equal(createHash('sha256').update(data as Buffer).digest('hex'), sum, `${img}: ${path}`);
      }
    } finally {
      fs.close();
    }
  });
}
