/**
 * A stand-alone server process for tests: mounts the standard in-memory tree, prints "ready",
 * and exits by itself when the session ends (printing "closed <reason>").
 * Usage: node fixture-server.js '<FixtureArgs as JSON>'
 */
import { FuseServer } from '../src/index.js';
import type { FixtureArgs } from './helpers.js';
import { MEMFS_MODULE } from './helpers.js';
import { createFileSystem } from './memfs.js';

// `node --test dist/test/` runs every file here; without arguments this is not a test: do nothing.
if (process.argv[2] === undefined) process.exit(0);
const args = JSON.parse(process.argv[2]) as FixtureArgs;
let server: FuseServer;
try {
  server = await FuseServer.mount({
    mountpoint: args.mountpoint,
    fs: args.mode === 'in-thread' ? createFileSystem({}) : { module: MEMFS_MODULE, options: {} },
    readWorkers: args.mode === 'in-thread' ? 0 : (args.readWorkers ?? 2),
    readdirplus: args.readdirplus ?? 'auto',
    allowOther: args.allowOther ?? false,
    unmountOnSignals: args.signals ?? [],
    subtype: args.subtype ?? 'memfs',
    fsname: args.fsname ?? 'memfs-fixture',
  });
} catch (err) {
  process.stderr.write(`mount failed: ${(err as Error).name}: ${(err as Error).message}\n`);
  process.exit(2);
}
process.stdout.write('ready\n');
if (args.crashAfterMs !== undefined) {
  // Simulates a bug in the embedding program: an uncaught exception while mounted.
  setTimeout(() => {
    throw new Error('fixture crash');
  }, args.crashAfterMs);
}
const info = await server.closed;
process.stdout.write(`closed ${info.reason} ${info.detail}\n`);
