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
  const stopSignals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  const early = deferSignals(stopSignals);
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
      unmountOnSignals: stopSignals,
    });
  } catch (err) {
    early.release();
    // A layer that cannot be opened (bad root hash, corrupt superblock) is reported in the
    // layer's own words: the mount command shows this line as its error.
    if (err instanceof FileSystemLoadError && err.filesystemMessage !== undefined) throw new CommandError(err.filesystemMessage);
    if (err instanceof FuseError) throw new CommandError(err.message);
    throw err;
  }
  early.release();
  if (early.asked()) {
    // Told to stop while mounting (an interrupted `atomfs mount`): undo our own mount, not die
    // half-way through it with mount(8) left to finish a mount nobody would serve.
    const info = await server.unmount();
    process.stderr.write(`atomfs: ${spec.mountpoint} stopped while starting: ${info.detail}\n`);
    return 1;
  }
  process.stderr.write(`atomfs: serving ${spec.layers.length} layers at ${spec.mountpoint} (pid ${process.pid})\n`);
  signalReady(values['ready-fd'] === undefined ? undefined : Number(values['ready-fd']));
  const info = await server.closed;
  process.stderr.write(`atomfs: ${spec.mountpoint} ${info.reason}: ${info.detail}\n`);
  return info.reason === 'unmounted' ? 0 : 1;
}

/** Until release(), the signals only note that a stop was asked for (instead of killing us). */
function deferSignals(signals: readonly NodeJS.Signals[]): { asked: () => boolean; release: () => void } {
  let asked = false;
  const note = (): void => {
    asked = true;
  };
  for (const s of signals) process.on(s, note);
  return { asked: () => asked, release: () => signals.forEach((s) => process.off(s, note)) };
}
