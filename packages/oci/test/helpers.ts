/** Shared fixtures for the oci tests (not a test file itself). */
import { spawnSync, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { writeLayout, type Descriptor, type WrittenImage } from '../src/index.js';

export function tempDir(t: TestContext, prefix = 'atomfs-oci-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function randomFile(dir: string, name: string, size: number): string {
  const path = join(dir, name);
  writeFileSync(path, randomBytes(size));
  return path;
}

/** Independent digest: coreutils sha256sum, not node:crypto. */
export function sha256sum(path: string): string {
  const out = execFileSync('sha256sum', ['--', path], { encoding: 'utf8' });
  const hex = out.split(/\s+/)[0] ?? '';
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`sha256sum printed ${JSON.stringify(out)}`);
  return hex;
}

export function readJson(path: string): any {
  return JSON.parse(readFileSync(path, 'utf8'));
}

export function writeJson(path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value));
}

/** Store a JSON value as a blob; returns its descriptor (digest over the exact bytes). */
export function putJsonBlob(layoutDir: string, value: unknown, mediaType: string): Descriptor {
  const bytes = Buffer.from(JSON.stringify(value));
  const hex = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(layoutDir, 'blobs', 'sha256', hex), bytes);
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
}

export function blobFile(layoutDir: string, digest: string): string {
  return join(layoutDir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
}

export interface GoodImage {
  readonly dir: string;
  readonly written: WrittenImage;
  readonly files: readonly string[];
}

export const TAG = 'test-squashfs';
export const HASH_A = '0123456789abcdef'.repeat(4);
export const HASH_B = 'fedcba9876543210'.repeat(4);

/** A two-layer image tagged TAG; bottom layer has a root hash. */
export async function goodImage(t: TestContext): Promise<GoodImage> {
  const work = tempDir(t);
  const files = [randomFile(work, 'bottom.sqfs', 8192), randomFile(work, 'top.sqfs', 4096 + 17)];
  const dir = join(work, 'oci');
  const written = await writeLayout(dir, {
    tag: TAG,
    layers: [{ file: files[0] as string, rootHash: HASH_A }, { file: files[1] as string, rootHash: HASH_B }],
  });
  return { dir, written, files };
}

/**
 * Rewrite the manifest of TAG through `edit`, store it as a new blob and repoint index.json at it,
 * so only the edited part is wrong.
 */
export function editManifest(img: GoodImage, edit: (m: any) => void): void {
  const manifest = readJson(img.written.manifestPath);
  edit(manifest);
  const desc = putJsonBlob(img.dir, manifest, 'application/vnd.oci.image.manifest.v1+json');
  editIndex(img.dir, (idx) => {
    const entry = idx.manifests.find((d: any) => d.annotations?.['org.opencontainers.image.ref.name'] === TAG);
    entry.digest = desc.digest;
    entry.size = desc.size;
  });
}

export function editIndex(dir: string, edit: (idx: any) => void): void {
  const path = join(dir, 'index.json');
  const idx = readJson(path);
  edit(idx);
  writeJson(path, idx);
}

export interface ToolResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run umoci; a missing binary is a test failure (the test setup installs it: apt-get install umoci). */
export function umoci(args: readonly string[]): ToolResult {
  const r = spawnSync('umoci', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`umoci is required for these tests (apt-get install -y umoci): ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
