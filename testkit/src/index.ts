import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A deterministic pseudo-random generator (xorshift32): data and failures reproduce from the seed. */
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

/** `n` bytes from `rand`. */
export function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = rand() & 0xff;
  return b;
}

/** A new private directory under the system's temporary directory. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `atomfs-${prefix}-`));
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * A small tree with every kind of entry a reader parses (directories deep and wide, regular,
 * empty, random and repetitive files, symlinks, a dangling one, a hard link, a fifo, a device,
 * short and long xattrs in two namespaces, an old mtime), for format, corruption and fuzz tests.
 * `label` goes into the text file; `bigDirEntries` sizes the wide directory (erofs wants its
 * listing over several blocks; squashfs's corruption tests want all inodes in one metadata
 * block). Needs root (mknod, trusted.* xattrs).
 */
export function smallTree(dir: string, label: string, bigDirEntries = 300): void {
  const rand = prng(42);
  mkdirSync(join(dir, 'a/b/c'), { recursive: true });
  mkdirSync(join(dir, 'big-dir'));
  for (let i = 0; i < bigDirEntries; i++) writeFileSync(join(dir, 'big-dir', `entry-${String(i).padStart(4, '0')}`), `file ${i}\n`);
  writeFileSync(join(dir, 'a/b/c/deep.txt'), 'deep\n');
  writeFileSync(join(dir, 'random.bin'), randomBytes(rand, 200_000));
  writeFileSync(join(dir, 'text.txt'), `hello ${label}\n`.repeat(20_000));
  writeFileSync(join(dir, 'empty'), '');
  symlinkSync('a/b/c/deep.txt', join(dir, 'link'));
  symlinkSync('/nowhere', join(dir, 'dangling'));
  linkSync(join(dir, 'text.txt'), join(dir, 'a/hardlink.txt'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  execFileSync('mknod', [join(dir, 'null'), 'c', '1', '3']);
  execFileSync('setfattr', ['-n', 'user.small', '-v', 'value', join(dir, 'text.txt')]);
  execFileSync('setfattr', ['-n', 'user.small', '-v', 'value', join(dir, 'empty')]);
  execFileSync('setfattr', ['-n', 'user.large', '-v', '0x' + 'ab'.repeat(1000), join(dir, 'random.bin')]);
  execFileSync('setfattr', ['-n', 'trusted.large', '-v', '0x' + 'cd'.repeat(1000), join(dir, 'random.bin')]);
  utimesSync(join(dir, 'empty'), 1_000_000, 1_000_000);
}
