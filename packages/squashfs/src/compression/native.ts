import { createRequire } from 'node:module';

/**
 * Loading of the codec libraries, most of them native addons. They are CommonJS and loaded lazily
 * with `require` (not static imports) so that a binding that cannot load — missing prebuilt
 * binary, failed source build, other platform — costs only the compressors that need it, and lz4
 * and zstd can fall back to portable decoders.
 */
const requireCjs = createRequire(import.meta.url);

export type LzmaModule = typeof import('@napi-rs/lzma');
export type Lz4Module = typeof import('lz4-napi');
export type ZstdBinding = typeof import('zstd-napi/binding.js');
export type FzstdModule = typeof import('fzstd');

/** A module or the reason it could not be loaded. */
export type Loaded<T> = { ok: true; module: T } | { ok: false; error: Error };

const cache = new Map<string, Loaded<unknown>>();

/** `require(specifier)` once per process; a failure is remembered, never thrown. */
export function tryRequire<T>(specifier: string): Loaded<T> {
  let hit = cache.get(specifier);
  if (hit === undefined) {
    try {
      hit = { ok: true, module: requireCjs(specifier) as unknown };
    } catch (err) {
      hit = { ok: false, error: err instanceof Error ? err : new Error(String(err)) };
    }
    cache.set(specifier, hit);
  }
  return hit as Loaded<T>;
}

export const loadLzma = (): Loaded<LzmaModule> => tryRequire<LzmaModule>('@napi-rs/lzma');
export const loadLz4 = (): Loaded<Lz4Module> => tryRequire<Lz4Module>('lz4-napi');
export const loadZstd = (): Loaded<ZstdBinding> => tryRequire<ZstdBinding>('zstd-napi/binding.js');
export const loadFzstd = (): Loaded<FzstdModule> => tryRequire<FzstdModule>('fzstd');
