/** The erofs images the erofs tests use, made by mkfs.erofs (erofs-utils). */
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { run, trackBackingFile } from './lib/index.js';

/** erofs-utils 1.5 (Debian 12) fails on a 255-byte name: drop names that long from a tree. */
export function dropLongNames(dir: string | Buffer, limit = 255): number {
  let dropped = 0;
  const base = typeof dir === 'string' ? Buffer.from(dir) : dir;
  for (const name of readdirSync(base, { encoding: 'buffer' })) {
    const p = Buffer.concat([base, Buffer.from('/'), name]);
    if (name.length >= limit) {
      rmSync(p, { recursive: true, force: true });
      dropped++;
    } else if (lstatSync(p).isDirectory()) {
      dropped += dropLongNames(p, limit);
    }
  }
  return dropped;
}

/** mkfs.erofs OPTIONS OUT DIR (quiet); the image is tracked for cleanup. */
export async function mkfsErofs(dir: string, out: string, options: readonly string[]): Promise<string> {
  await run(['mkfs.erofs', '--quiet', ...options, out, dir], { timeoutMs: 600_000 });
  trackBackingFile(out);
  return out;
}

export function erofsImagePath(work: string, name: string): string {
  return join(work, `${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}.erofs`);
}
