#!/usr/bin/env node
// Bundles the compiled CLI (packages/atomfs/dist/src/cli.js and every module its main thread
// loads) into one file, packages/atomfs/dist/src/bundle/cli.js, which bin/atomfs runs.
//
// Why: Node's ESM loader costs ~1-2 ms per module file. The CLI's main thread loads ~80 of them
// (a ~0.1 s of every `atomfs` command warm, ~0.2 s after the page cache was dropped), which was
// a third of `atomfs verify` on a 120 MiB layer and most of the CLI's part of mount latency.
//
// Only the main thread is bundled. Worker threads (FUSE session/read workers, hash and prefetch
// workers) and the filesystem module a FUSE session loads stay the tsc output: they share class
// identities (error classes checked with instanceof) with the modules they import, which one
// bundle per thread would duplicate. Each bundled module keeps seeing its own location through
// import.meta.url (rewritten below), so `new URL('./hash-worker.js', import.meta.url)` and the
// codec loader's createRequire still resolve from the package the module came from.
import { build } from 'esbuild';
import { dirname, relative, resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entry = resolve(root, 'packages/atomfs/dist/src/cli.js');
const outfile = resolve(root, 'packages/atomfs/dist/src/bundle/cli.js');
const outDir = dirname(outfile);

/** import.meta.url of each bundled module, as the URL of the file it was bundled from. */
const keepModuleUrls = {
  name: 'keep-module-urls',
  setup(b) {
    b.onLoad({ filter: /[\\/]packages[\\/][^\\/]+[\\/]dist[\\/].*\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return { contents: source, loader: 'js' };
      const rel = relative(outDir, args.path).split('\\').join('/');
      return { contents: source.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader: 'js' };
    });
  },
};

await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // The codec addons are required at run time (createRequire), never imported statically, so
  // everything esbuild sees is ours or node:*; anything else would be an error worth seeing.
  plugins: [keepModuleUrls],
  logLevel: 'warning',
  legalComments: 'none',
});
