/** The erofs images the erofs tests use, made by mkfs.erofs (erofs-utils). */
import assert from 'node:assert/strict';
import { lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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

const EROFS_LZ4HC = 'application/vnd.stacker.image.layer.erofs+lz4hc';
const EROFS_LZ4 = 'application/vnd.stacker.image.layer.erofs+lz4';

/** A layer file as the OCI layout lists it. */
export interface BuiltLayer {
  file: string;
  fsType: 'squashfs' | 'erofs';
  mediaType: string;
  rootHash: string;
}

/**
 * A stacker erofs layer: mkfs.erofs OPTIONS, then `veritysetup format` with the tree appended at
 * the image's end (erofs images are whole 4 KiB blocks). Uncompressed options get the lz4 media
 * type, as stacker gives every erofs layer a compressor's.
 */
export async function packErofs(dir: string, out: string, options: string[]): Promise<BuiltLayer & { imageBytes: number }> {
  await mkfsErofs(dir, out, options);
  const size = readFileSync(out).length;
  const r = await run(['veritysetup', 'format', out, out, `--hash-offset=${size}`, `--data-blocks=${size / 4096}`]);
  const m = /^Root hash:\s+([0-9a-f]{64})\s*$/m.exec(r.stdout.toString('utf8'));
  assert.ok(m, 'veritysetup printed a root hash');
  return { file: out, fsType: 'erofs', mediaType: options.includes('-zlz4hc') ? EROFS_LZ4HC : EROFS_LZ4, rootHash: m[1]!, imageBytes: size };
}
