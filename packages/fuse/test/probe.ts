/**
 * Runs one check in a separate process (typically as a non-root user, possibly inside a user
 * namespace) and prints a JSON result line.
 *   probe.js userns-check <mountpoint>   mount, compare everything with the tree, unmount
 *   probe.js open-device <path>          try to open a FUSE device
 *   probe.js mount <mountpoint>          try to mount (expected to fail outside a userns)
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FuseServer, openFuseDevice } from '../src/index.js';
import { MEMFS_MODULE } from './helpers.js';
import { buildNodes, standardTree } from './memfs.js';
import { checkAttributes, checkContent, checkListings, checkOddReads, checkSymlinks, checkXattrs } from './tree-check.js';

const [command, arg] = process.argv.slice(2);
const print = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

async function main(): Promise<void> {
  if (command === 'open-device') {
    try {
      openFuseDevice(arg);
      print({ ok: true });
    } catch (err) {
      print({ ok: false, name: (err as Error).name, message: (err as Error).message });
    }
  } else if (command === 'mount') {
    try {
      const s = await FuseServer.mount({ mountpoint: arg!, fs: { module: MEMFS_MODULE, options: {} } });
      await s.unmount();
      print({ ok: true });
    } catch (err) {
      print({ ok: false, name: (err as Error).name, message: (err as Error).message });
    }
  } else if (command === 'userns-check') {
    const nodes = buildNodes(standardTree());
    const server = await FuseServer.mount({ mountpoint: arg!, fs: { module: MEMFS_MODULE, options: {} }, readWorkers: 2 });
    let close;
    try {
      // Only uid/gid 0 is mapped in `unshare -r`; the kernel shows other ids as the overflow id.
      checkAttributes(arg!, nodes.filter((n) => !n.path.startsWith('sub/')), { mapId: (id) => (id === 0 ? 0 : 65534) });
      // 'sub' (0700) and 'f4096' (0600) belong to uid 1234, which is not mapped: namespace
      // root has no override for them, and default_permissions makes the kernel say so.
      assert.throws(() => readdirSync(join(arg!, 'sub')), { code: 'EACCES' });
      assert.throws(() => readFileSync(join(arg!, 'f4096')), { code: 'EACCES' });
      const visible = nodes.filter((n) => n.path !== 'sub' && !n.path.startsWith('sub/') && n.path !== 'f4096');
      await checkListings(arg!, visible);
      checkSymlinks(arg!, visible);
      await checkXattrs(arg!, visible);
      await checkContent(arg!, visible);
      checkOddReads(arg!, visible);
    } finally {
      close = await server.unmount();
    }
    print({ ok: true, uid: process.getuid?.(), close });
  } else {
    throw new Error(`unknown probe ${command}`);
  }
}

// `node --test dist/test/` runs every file here; without arguments this is not a test: do nothing.
if (command !== undefined) await main();
