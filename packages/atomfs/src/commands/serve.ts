import { readFileSync } from 'node:fs';
import { FileSystemLoadError, FuseError, FuseServer } from '@atomfs/fuse';
import { parse } from '../args.js';
import { signalReady } from '../daemon.js';
import { CommandError } from '../errors.js';
import { isHostRoot } from '../host.js';
import type { OverlayFsOptions } from '../fusefs/overlay-fs.js';
import type { LayerSpec } from '../layers/layer-spec.js';

// Its own module so the server process loads only the FUSE package on its main thread: the
// layers are opened by the session thread, which imports the overlay code itself.

/** Hidden: the detached FUSE server of an image mount (started by mountImage). */
export async function serveCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { 'ready-fd': { type: 'string' } });
  const spec = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as { mountpoint: string; layers: LayerSpec[]; debug: boolean; nosuid?: boolean; nodev?: boolean };
  // As host root the mount honours setuid bits and device nodes, as the kernel path (and Go
  // atomfs) does, unless asked not to; in a user namespace the kernel refuses both anyway.
  const hostRoot = isHostRoot();
  const options: OverlayFsOptions = { layers: spec.layers };
  let server: FuseServer;
  try {
    server = await FuseServer.mount({
      mountpoint: spec.mountpoint,
      fs: { module: new URL('../fusefs/overlay-fs.js', import.meta.url).href, options },
      // Every uid of a container must be able to use its rootfs; permissions are the kernel's
      // (default_permissions), checked against the image's modes and owners.
      allowOther: true,
      nosuid: !hostRoot || spec.nosuid === true,
      nodev: !hostRoot || spec.nodev === true,
      subtype: 'atomfs',
      fsname: 'atomfs',
      debug: spec.debug,
      unmountOnSignals: ['SIGTERM', 'SIGINT', 'SIGHUP'],
    });
  } catch (err) {
    // A layer that cannot be opened (bad root hash, corrupt superblock) is reported in the
    // layer's own words: the mount command shows this line as its error.
    if (err instanceof FileSystemLoadError && err.filesystemMessage !== undefined) throw new CommandError(err.filesystemMessage);
    if (err instanceof FuseError) throw new CommandError(err.message);
    throw err;
  }
  process.stderr.write(`atomfs: serving ${spec.layers.length} layers at ${spec.mountpoint} (pid ${process.pid})\n`);
  signalReady(values['ready-fd'] === undefined ? undefined : Number(values['ready-fd']));
  const info = await server.closed;
  process.stderr.write(`atomfs: ${spec.mountpoint} ${info.reason}: ${info.detail}\n`);
  return info.reason === 'unmounted' ? 0 : 1;
}
