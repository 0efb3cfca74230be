import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LayerSpec } from './layers/layer-spec.js';
import { mountNamespaceId } from './host.js';

/** The Go atomfs runtime dir: $ATOMFS_TEST_RUN_DIR, else --metadir, else /run/atomfs. */
export function runtimeDir(metadirFlag: string | undefined): string {
  const env = process.env.ATOMFS_TEST_RUN_DIR;
  if (env !== undefined && env !== '') return env;
  if (metadirFlag !== undefined && metadirFlag !== '') return metadirFlag;
  return '/run/atomfs';
}

/** "/tmp/x/mp" → "tmp-x-mp" (Go atomfs's munging, collisions included). */
export function mungeTarget(absTarget: string): string {
  return absTarget.replace(/^\/+/, '').replace(/\//g, '-');
}

export function namespaceDir(metadirFlag: string | undefined): string {
  return join(runtimeDir(metadirFlag), 'meta', mountNamespaceId());
}

export function metadirFor(absTarget: string, metadirFlag: string | undefined): string {
  return join(namespaceDir(metadirFlag), mungeTarget(absTarget));
}

export type Backend = 'kernel' | 'fuse';

/** One mount made for this image, in the order made (umount goes in reverse). */
export interface MountStep {
  target: string;
  kind: 'layer' | 'fuse' | 'overlay';
  /** Layer hex of a kernel dm-verity device this mount uses (closed when its last user goes). */
  dm?: string;
}

/**
 * config.json: Go atomfs's MountOCIOpts fields (scripts read them), plus what our umount needs
 * to undo the mount exactly. Written before the first mount and updated after each, so a crash
 * midway still leaves a record that umount can clean up from.
 */
export interface MountRecord {
  OCIDir: string;
  Tag: string;
  Target: string;
  AddWriteableOverlay: boolean;
  WriteableOverlayPath: string;
  AllowMissingVerityData: boolean;
  MetadataDir: string;
  atomfs: {
    backend: Backend;
    layers: LayerSpec[];
    mounts: MountStep[];
    serverPid?: number;
    serverLog?: string;
  };
}

export function writeRecord(metadir: string, record: MountRecord): void {
  mkdirSync(metadir, { recursive: true });
  const tmp = join(metadir, '.config.json.tmp');
  writeFileSync(tmp, JSON.stringify(record, null, 1) + '\n', { mode: 0o644 });
  renameSync(tmp, join(metadir, 'config.json'));
}

export function readRecord(metadir: string): MountRecord | undefined {
  const file = join(metadir, 'config.json');
  if (!existsSync(file)) return undefined;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as MountRecord;
    if (typeof r.Target !== 'string' || typeof r.atomfs !== 'object' || !Array.isArray(r.atomfs.mounts)) return undefined;
    return r;
  } catch {
    return undefined;
  }
}
