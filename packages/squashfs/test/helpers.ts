import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, linkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { walkTree } from '@atomfs/tree';
import { BufferSource, SquashFS, squashfsTree } from '../src/index.js';

/** A deterministic pseudo-random generator (xorshift32), so failures reproduce. */
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

export function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = rand() & 0xff;
  return b;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `atomfs-${prefix}-`));
}

/** A small tree with every kind of entry the reader parses, for corruption and fuzz tests. */
export function smallTree(dir: string): void {
  const rand = prng(42);
  mkdirSync(join(dir, 'a/b/c'), { recursive: true });
  mkdirSync(join(dir, 'big-dir'));
  for (let i = 0; i < 120; i++) writeFileSync(join(dir, 'big-dir', `entry-${String(i).padStart(4, '0')}`), `file ${i}\n`);
  writeFileSync(join(dir, 'a/b/c/deep.txt'), 'deep\n');
  writeFileSync(join(dir, 'random.bin'), randomBytes(rand, 200_000));
  writeFileSync(join(dir, 'text.txt'), 'hello squashfs\n'.repeat(20_000));
  writeFileSync(join(dir, 'empty'), '');
  symlinkSync('a/b/c/deep.txt', join(dir, 'link'));
  symlinkSync('/nowhere', join(dir, 'dangling'));
  linkSync(join(dir, 'text.txt'), join(dir, 'a/hardlink.txt'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  execFileSync('mknod', [join(dir, 'null'), 'c', '1', '3']);
  execFileSync('setfattr', ['-n', 'user.small', '-v', 'value', join(dir, 'text.txt')]);
  execFileSync('setfattr', ['-n', 'user.large', '-v', '0x' + 'ab'.repeat(1000), join(dir, 'random.bin')]);
  utimesSync(join(dir, 'empty'), 1_000_000, 1_000_000);
}

export function mksquashfs(src: string, out: string, args: string[] = []): void {
  execFileSync('mksquashfs', [src, out, '-noappend', '-quiet', '-no-progress', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
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

