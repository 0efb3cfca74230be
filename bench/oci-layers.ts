/**
 * Stacker-format OCI images for the benchmarks, made with the real tools: every layer is a
 * directory packed by `mksquashfs -comp zstd`, with dm-verity data appended by `veritysetup
 * format` (hash offset = squashfs size), in an OCI layout written by @atomfs/oci. Two tags per
 * layout: "on" carries the root hash annotations, "off" the same blobs without them.
 */
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { writeLayout } from '@atomfs/oci';
import { BenchError, sh } from './proc.js';

const VERITY_BLOCK = 4096;

export interface OciImage {
  ociDir: string;
  /** Blob paths in the layout, bottom-most first (squashfs + appended verity data). */
  blobs: string[];
  rootHashes: string[];
}

/** mksquashfs DIR OUT (zstd), then veritysetup format OUT OUT at the squashfs end; the root hash. */
export function packVerityLayer(dir: string, out: string): string {
  sh(['mksquashfs', dir, out, '-noappend', '-quiet', '-no-progress', '-comp', 'zstd'], 'mksquashfs', 1_800_000);
  const size = statSync(out).size;
  // mksquashfs pads to 4 KiB: the verity data starts on a block boundary, as Go atomfs lays it out.
  if (size % VERITY_BLOCK !== 0) throw new BenchError(`${out}: ${size} bytes is not 4 KiB aligned`);
  const text = sh(['veritysetup', 'format', out, out, `--hash-offset=${size}`, `--data-blocks=${size / VERITY_BLOCK}`], 'veritysetup format', 600_000);
  const m = /^Root hash:\s+([0-9a-f]{64})\s*$/m.exec(text);
  if (!m) throw new BenchError(`veritysetup format printed no root hash:\n${text}`);
  return m[1]!;
}

/**
 * Build (or reuse, keyed by `metaFile`) an OCI layout from layer directories, bottom-most first.
 * `layerDirs` creates them under `srcDir`; it and the packed layer files are removed once the
 * layout is written (also when an earlier, interrupted run left them behind).
 */
export async function verityImage(ociDir: string, metaFile: string, srcDir: string, layerDirs: () => string[]): Promise<OciImage> {
  try {
    return await buildVerityImage(ociDir, metaFile, layerDirs);
  } finally {
    rmSync(srcDir, { recursive: true, force: true });
  }
}

async function buildVerityImage(ociDir: string, metaFile: string, layerDirs: () => string[]): Promise<OciImage> {
  if (existsSync(metaFile)) {
    const m = JSON.parse(readFileSync(metaFile, 'utf8')) as OciImage;
    if (m.blobs.every((b) => existsSync(b)) && existsSync(`${m.ociDir}/index.json`)) return m;
  }
  rmSync(ociDir, { recursive: true, force: true });
  const dirs = layerDirs();
  const files: string[] = [];
  const rootHashes: string[] = [];
  for (const [i, d] of dirs.entries()) {
    const f = `${ociDir}.layer${i}.sqfs`;
    rootHashes.push(packVerityLayer(d, f));
    files.push(f);
  }
  await writeLayout(ociDir, { tag: 'on', layers: files.map((file, i) => ({ file, rootHash: rootHashes[i]! })) });
  const w = await writeLayout(ociDir, { tag: 'off', layers: files.map((file) => ({ file })) });
  for (const f of files) rmSync(f);
  const img: OciImage = { ociDir, blobs: w.layers.map((l) => l.path), rootHashes };
  writeFileSync(metaFile, JSON.stringify(img) + '\n');
  return img;
}
