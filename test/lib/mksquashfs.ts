/**
 * Building reference images with the real mksquashfs (4.5.1), the variants the reader must
 * handle, and a per-process cache so several tests share one build of each variant.
 */
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { makeTempDir, processCleanup, trackBackingFile, type CleanupStack } from './cleanup.js';
import { run } from './exec.js';
import { mapSnapshot, type SnapField, type Snapshot } from './snapshot.js';

export type Compressor = 'gzip' | 'xz' | 'lzma' | 'lzo' | 'lz4' | 'zstd';

export interface Variant {
  /** Unique, file-name safe. */
  name: string;
  comp: Compressor;
  /** Bytes; default 128 KiB. */
  blockSize?: number;
  extra?: readonly string[];
  /**
   * Whether the kernel (this one: CONFIG_SQUASHFS_{ZLIB,XZ,LZO,LZ4,ZSTD}=y) can mount it. Squashfs
   * 4.0 in Linux never had an lzma decompressor (only xz), so `-comp lzma` images build and
   * unsquashfs reads them, but `mount -t squashfs` rejects them: compare those with unsquashfs.
   */
  kernelMountable: boolean;
  /** Parts of the source the image legitimately does not hold (apply with expectedFromSource). */
  drops?: readonly SnapField[];
}

const K = 1024;
const M = 1024 * 1024;

function v(comp: Compressor, blockSize: number, extra: string[] = [], name?: string, drops?: SnapField[]): Variant {
  const bs = blockSize >= M ? `${blockSize / M}M` : `${blockSize / K}K`;
  return {
    name: name ?? `${comp}-${bs}${extra.length ? '-' + extra.join('').replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '') : ''}`,
    comp,
    blockSize,
    extra,
    kernelMountable: comp !== 'lzma',
    ...(drops ? { drops } : {}),
  };
}

/** Every variant the squashfs reader (and the FUSE mount on top) must pass. */
export const VARIANTS: readonly Variant[] = [
  v('gzip', 128 * K),
  v('xz', 128 * K),
  v('lzma', 128 * K),
  v('lzo', 128 * K),
  v('lz4', 128 * K),
  v('zstd', 128 * K),
  v('gzip', 4 * K),
  v('gzip', M),
  v('zstd', 4 * K),
  v('zstd', M),
  v('gzip', 128 * K, ['-no-fragments'], 'gzip-no-fragments'),
  v('gzip', 128 * K, ['-always-use-fragments'], 'gzip-always-use-fragments'),
  v('gzip', 128 * K, ['-noI', '-noD', '-noF', '-noX'], 'gzip-uncompressed'),
  v('gzip', 128 * K, ['-no-xattrs'], 'gzip-no-xattrs', ['xattrs']),
  v('xz', 128 * K, ['-Xbcj', 'x86'], 'xz-bcj-x86'),
  v('lz4', 128 * K, ['-Xhc'], 'lz4-hc'),
  v('gzip', 128 * K, ['-no-exports'], 'gzip-no-exports'),
];

export function variantByName(name: string): Variant {
  const found = VARIANTS.find((x) => x.name === name);
  if (!found) throw new RangeError(`no variant ${name}; have ${VARIANTS.map((x) => x.name).join(', ')}`);
  return found;
}

export interface BuiltImage {
  file: string;
  variant: Variant;
  bytes: number;
  seconds: number;
}

export function mksquashfsArgs(srcDir: string, outFile: string, variant: Variant): string[] {
  return [
    'mksquashfs', srcDir, outFile,
    '-noappend', '-quiet', '-no-progress',
    '-comp', variant.comp,
    '-b', String(variant.blockSize ?? 128 * K),
    ...(variant.extra ?? []),
  ];
}

/** Run mksquashfs SRC OUT with the variant's options (fails loudly if mksquashfs is missing). */
export async function buildImage(srcDir: string, outFile: string, variant: Variant): Promise<BuiltImage> {
  const t0 = process.hrtime.bigint();
  // mksquashfs is multi-threaded and can take minutes on the big tree; allow for it.
  await run(mksquashfsArgs(srcDir, outFile, variant), { timeoutMs: 900_000 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { file: resolve(outFile), variant, bytes: statSync(outFile).size, seconds };
}

/**
 * What a snapshot of the image should equal, given a snapshot of its source. mksquashfs keeps
 * everything the snapshot records (types, modes, owners, u32 mtimes, device numbers, hard links,
 * user/trusted xattrs except on symlinks — the tree has none there), so only variant options that
 * drop data change it.
 */
export function expectedFromSource(source: Snapshot, variant: Variant): Snapshot {
  const drops = new Set(variant.drops ?? []);
  return mapSnapshot(source, (e) => {
    if (drops.has('xattrs')) e.xattrs = {};
    return e;
  });
}

/**
 * Builds each (source dir, variant) once per process. Images live in one temp dir removed by the
 * given cleanup stack (default: at process exit).
 */
export class ImageCache {
  private readonly builds = new Map<string, Promise<BuiltImage>>();
  private dir: string | undefined;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly stack: CleanupStack = processCleanup) {}

  /** The image of `srcDir` for `variant`, built on first request. Builds run one at a time. */
  get(srcDir: string, variant: Variant): Promise<BuiltImage> {
    const key = `${resolve(srcDir)}\0${JSON.stringify(variant)}`;
    let p = this.builds.get(key);
    if (!p) {
      this.dir ??= makeTempDir('images', this.stack);
      const out = join(this.dir, `${this.builds.size}-${variant.name}.sqfs`);
      trackBackingFile(out);
      // One build at a time: mksquashfs already uses every core; parallel builds only thrash.
      p = this.chain.then(() => buildImage(srcDir, out, variant));
      this.chain = p.catch(() => undefined);
      this.builds.set(key, p);
    }
    return p;
  }
}

/** The process-wide cache. */
export const imageCache = new ImageCache();
