#!/usr/bin/env node
// Bundles the compiled CLI (packages/atomfs/dist/src/cli.js and every module its main thread
// loads) into one file, packages/atomfs/dist/src/bundle/cli.js, which bin/atomfs runs.
//
// Why: Node's ESM loader costs ~1-2 ms per module file. The CLI's main thread loads ~80 of them
// (a ~0.1 s of every `atomfs` command warm, ~0.2 s after the page cache was dropped), which was
// a third of `atomfs verify` on a 120 MiB layer and most of the CLI's part of mount latency.
//
// The worker threads (hash, prefetch, FUSE session and read workers) and the filesystem modules
// a FUSE session imports by URL get bundles of their own next to it: a thread that loads ~80
// files starts ~0.1 s later (a cold mount waits for its session thread; an extraction's main
// thread decodes what its helper has not reached). Each bundle has its own copy of the classes it
// uses; across bundles only data crosses (messages, shared memory, plain objects and Buffers
// returned by the filesystem), and the one error class a FUSE session recognises from a
// filesystem module, FuseErrno, is recognised by name and errno (isFuseErrno), not by identity.
// Every bundled module keeps seeing its own location through import.meta.url (rewritten below),
// so other URLs and the codec loader's createRequire resolve from the package the module came
// from.
import { build } from 'esbuild';
import { basename, dirname, relative, resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entry = resolve(root, 'packages/atomfs/dist/src/cli.js');
const outfile = resolve(root, 'packages/atomfs/dist/src/bundle/cli.js');
const outDir = dirname(outfile);

/**
 * Entry points loaded by URL (worker threads, and the filesystem modules a FUSE session imports),
 * bundled on their own next to the CLI bundle. A URL naming one of them is pointed at its bundle.
 */
const workers = [
  'packages/squashfs/dist/src/prefetch-worker.js',
  'packages/verity/dist/src/hash-worker.js',
  'packages/fuse/dist/src/session-worker.js',
  'packages/fuse/dist/src/read-worker.js',
  'packages/atomfs/dist/src/fusefs/overlay-fs.js',
  'packages/atomfs/dist/src/fusefs/squashfs-fs.js',
  'packages/atomfs/dist/src/fusefs/erofs-fs.js',
  'packages/registry/dist/src/fetch-worker.js',
].map((p) => resolve(root, p));
const workerUrl = /new URL\((['"])(\.{1,2}\/[^'"]+)\1, import\.meta\.url\)/g;

/**
 * import.meta.url of each bundled module, as the URL of the file it was bundled from; except
 * that `new URL('./x-worker.js', import.meta.url)` of a bundled worker points at its bundle.
 */
const keepModuleUrls = {
  name: 'keep-module-urls',
  setup(b) {
    b.onLoad({ filter: /[\\/]packages[\\/][^\\/]+[\\/]dist[\\/].*\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return { contents: source, loader: 'js' };
      const rel = relative(outDir, args.path).split('\\').join('/');
      const contents = source
        .replace(workerUrl, (whole, _q, spec) => {
          const target = resolve(dirname(args.path), spec);
          return workers.includes(target) ? `new URL(${JSON.stringify('./' + basename(target))}, __BUNDLE_URL__)` : whole;
        })
        .replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`)
        .replaceAll('__BUNDLE_URL__', 'import.meta.url');
      return { contents, loader: 'js' };
    });
  },
};

// A detached server runs serve-main.js: the FUSE server without the CLI's commands.
const serveEntry = resolve(root, 'packages/atomfs/dist/src/serve-main.js');
for (const [file, out] of [[entry, outfile], [serveEntry, resolve(outDir, 'serve-main.js')], ...workers.map((w) => [w, resolve(outDir, basename(w))])]) {
  await build({
    entryPoints: [file],
    outfile: out,
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
}
