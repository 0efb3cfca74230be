import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { walkTree } from '@atomfs/tree';
import { BufferSource, Erofs, erofsTree } from '../src/index.js';

/** xorshift32: reproducible pseudo-random numbers from a seed. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `atomfs-${prefix}-`));
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A small tree with every kind of entry the reader parses. */
export function smallTree(dir: string): void {
  const rand = prng(42);
  mkdirSync(join(dir, 'a/b/c'), { recursive: true });
  mkdirSync(join(dir, 'big-dir'));
  for (let i = 0; i < 300; i++) writeFileSync(join(dir, 'big-dir', `entry-${String(i).padStart(4, '0')}`), `file ${i}\n`);
  writeFileSync(join(dir, 'a/b/c/deep.txt'), 'deep\n');
  const random = Buffer.allocUnsafe(200_000);
  for (let i = 0; i < random.length; i++) random[i] = rand() & 0xff;
  writeFileSync(join(dir, 'random.bin'), random);
  writeFileSync(join(dir, 'text.txt'), 'hello erofs\n'.repeat(20_000));
  writeFileSync(join(dir, 'empty'), '');
  symlinkSync('a/b/c/deep.txt', join(dir, 'link'));
  symlinkSync('/nowhere', join(dir, 'dangling'));
  linkSync(join(dir, 'text.txt'), join(dir, 'a/hardlink.txt'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  execFileSync('mknod', [join(dir, 'null'), 'c', '1', '3']);
  execFileSync('setfattr', ['-n', 'user.small', '-v', 'value', join(dir, 'text.txt')]);
  execFileSync('setfattr', ['-n', 'user.small', '-v', 'value', join(dir, 'empty')]);
  execFileSync('setfattr', ['-n', 'trusted.large', '-v', '0x' + 'ab'.repeat(1000), join(dir, 'random.bin')]);
  utimesSync(join(dir, 'empty'), 1_000_000, 1_000_000);
}

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
