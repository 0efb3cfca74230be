/**
 * How sessions end: umount from outside, SIGTERM, SIGKILL (dead mount + cleanup), a crash of
 * the embedding program; and the start-up errors (bad mountpoint, device, FileSystem module).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  checkMountpoint,
  cleanupDeadMount,
  FileSystemLoadError,
  findMount,
  FuseDeviceError,
  FuseServer,
  isDeadMount,
  MountpointError,
} from '../src/index.js';
import {
  type FixtureServer,
  fuseMountsUnder,
  isProcessAlive,
  makeTempDir,
  MEMFS_MODULE,
  removeTempDir,
  runOk,
  startFixtureServer,
  stopFixtureServer,
} from './helpers.js';
import { createFileSystem } from './memfs.js';

const openFds = (): number => readdirSync('/proc/self/fd').length;

describe('session end', () => {
  let dir = '';
  let mp = '';
  let server: FixtureServer | undefined;
  beforeEach(() => {
    dir = makeTempDir();
    mp = join(dir, 'mnt');
    mkdirSync(mp);
  });
  afterEach(async () => {
    const s = server;
    server = undefined;
    try {
      if (s) await stopFixtureServer(s, mp);
    } finally {
      await removeTempDir(dir);
    }
  });

  const exitsCleanly = async (s: FixtureServer): Promise<void> => {
    const exit = await s.exited;
    assert.equal(exit.code, 0, `server exit ${exit.code ?? exit.signal}: ${s.stderr()}`);
    assert.ok(s.lines.some((l) => l.startsWith('closed unmounted')), s.lines.join('|'));
    assert.equal(isProcessAlive(s.child.pid!), false);
    assert.deepEqual(fuseMountsUnder(dir), []);
  };

  it('umount from outside ends the server process cleanly', async () => {
    server = await startFixtureServer({ mountpoint: mp, mode: 'worker', readWorkers: 2 });
    assert.equal(statSync(join(mp, 'one')).size, 1);
    await runOk('umount', [mp]);
    await exitsCleanly(server);
  });

  it('SIGTERM unmounts and exits cleanly when asked to handle it', async () => {
    server = await startFixtureServer({ mountpoint: mp, mode: 'worker', readWorkers: 2, signals: ['SIGTERM', 'SIGINT'] });
    assert.equal(statSync(join(mp, 'one')).size, 1);
    server.child.kill('SIGTERM');
    await exitsCleanly(server);
  });

  it('SIGTERM also works for the in-thread mode', async () => {
    server = await startFixtureServer({ mountpoint: mp, mode: 'in-thread', signals: ['SIGTERM'] });
    assert.equal(statSync(join(mp, 'f4095')).size, 4095);
    server.child.kill('SIGTERM');
    await exitsCleanly(server);
  });

  it('an uncaught exception in the embedding program still exits and detaches the mount', async () => {
    server = await startFixtureServer({ mountpoint: mp, mode: 'worker', readWorkers: 2, crashAfterMs: 200 });
    const exit = await server.exited;
    assert.equal(exit.code, 1, 'the uncaught exception exit code');
    assert.match(server.stderr(), /fixture crash/);
    assert.deepEqual(fuseMountsUnder(dir), []);
  });

  it('SIGKILL leaves a dead mount that cleanupDeadMount removes', async () => {
    server = await startFixtureServer({ mountpoint: mp, mode: 'worker', readWorkers: 2 });
    assert.equal(await isDeadMount(mp), false);
    server.child.kill('SIGKILL');
    await server.exited;
    assert.ok(findMount(mp), 'mount survives its server');
    assert.equal(await isDeadMount(mp), true);
    assert.throws(() => statfsSync(mp), { code: 'ENOTCONN' });
    assert.throws(() => readdirSync(mp), { code: 'ENOTCONN' });
    assert.throws(() => checkMountpoint(mp), (e: unknown) => e instanceof MountpointError && e.reason === 'dead-mount' && /Transport endpoint is not connected/.test(e.message));
    await assert.rejects(FuseServer.mount({ mountpoint: mp, fs: { module: MEMFS_MODULE } }), MountpointError);
    assert.equal(await cleanupDeadMount(mp), true);
    assert.equal(findMount(mp), undefined);
    assert.equal(await cleanupDeadMount(mp), false, 'nothing left to clean');
    assert.equal(await isDeadMount(mp), false);
  });
});

describe('in-process server', () => {
  let dir = '';
  beforeEach(() => {
    dir = makeTempDir();
  });
  afterEach(async () => {
    await removeTempDir(dir);
  });

  it('server.closed resolves when someone else unmounts; the fd is closed', async () => {
    const mp = join(dir, 'mnt');
    mkdirSync(mp);
    const fds = openFds();
    const server = await FuseServer.mount({ mountpoint: mp, fs: { module: MEMFS_MODULE, options: {} }, readWorkers: 1 });
    assert.equal(statSync(join(mp, 'f4097')).size, 4097);
    await runOk('umount', [mp]);
    const info = await server.closed;
    assert.deepEqual(info, { reason: 'unmounted', detail: 'unmounted' });
    assert.equal(openFds(), fds);
    assert.deepEqual(await server.unmount(), info, 'unmount after the end is a no-op');
  });

  it('refuses a missing mountpoint, a file, and a directory that is already a mountpoint', async () => {
    const fds = openFds();
    const reasonOf = async (mountpoint: string): Promise<string> => {
      try {
        await FuseServer.mount({ mountpoint, fs: { module: MEMFS_MODULE } });
      } catch (err) {
        assert.ok(err instanceof MountpointError, String(err));
        return `${err.reason}: ${err.message}`;
      }
      return 'mounted';
    };
    assert.match(await reasonOf(join(dir, 'nope')), /^missing: .*does not exist/);
    writeFileSync(join(dir, 'file'), '');
    assert.match(await reasonOf(join(dir, 'file')), /^not-directory: .*not a directory/);
    const mp = join(dir, 'mnt');
    mkdirSync(mp);
    const first = await FuseServer.mount({ mountpoint: mp, fs: { module: MEMFS_MODULE }, readWorkers: 0 });
    try {
      assert.match(await reasonOf(mp), /^already-mounted: .*already a mountpoint \(fuse\.tsfuse/);
    } finally {
      await first.unmount();
    }
    assert.equal(openFds(), fds);
  });

  it('explains a missing FUSE device', async () => {
    const mp = join(dir, 'mnt');
    mkdirSync(mp);
    await assert.rejects(
      FuseServer.mount({ mountpoint: mp, fs: { module: MEMFS_MODULE }, devicePath: join(dir, 'no-fuse') }),
      (e: unknown) => e instanceof FuseDeviceError && e.code === 'ENOENT' && /modprobe fuse/.test(e.message),
    );
    writeFileSync(join(dir, 'not-a-device'), '');
    await assert.rejects(
      FuseServer.mount({ mountpoint: mp, fs: { module: MEMFS_MODULE }, devicePath: join(dir, 'not-a-device') }),
      (e: unknown) => e instanceof FuseDeviceError && /not the FUSE device/.test(e.message),
    );
  });

  it('reports FileSystem modules that fail to load or build, leaving nothing behind', async () => {
    const mp = join(dir, 'mnt');
    mkdirSync(mp);
    const fds = openFds();
    await assert.rejects(
      FuseServer.mount({ mountpoint: mp, fs: { module: join(dir, 'missing.js') }, readWorkers: 2 }),
      (e: unknown) => e instanceof FileSystemLoadError && /cannot load FileSystem module/.test(e.message),
    );
    writeFileSync(join(dir, 'throws.mjs'), 'export function createFileSystem(o) { throw new Error("bad options " + o.x); }\n');
    await assert.rejects(
      FuseServer.mount({ mountpoint: mp, fs: { module: join(dir, 'throws.mjs'), options: { x: 42 } }, readWorkers: 2 }),
      (e: unknown) => e instanceof FileSystemLoadError && /bad options 42/.test(e.message),
    );
    writeFileSync(join(dir, 'noexport.mjs'), 'export const x = 1;\n');
    await assert.rejects(
      FuseServer.mount({ mountpoint: mp, fs: { module: join(dir, 'noexport.mjs') } }),
      (e: unknown) => e instanceof FileSystemLoadError && /does not export a function createFileSystem/.test(e.message),
    );
    await assert.rejects(FuseServer.mount({ mountpoint: mp, fs: { module: 'relative/path.js' } }), FileSystemLoadError);
    assert.equal(findMount(mp), undefined);
    assert.equal(openFds(), fds);
  });

  it('rejects invalid options before touching anything', async () => {
    const mp = join(dir, 'mnt');
    mkdirSync(mp);
    const bad = [{ readWorkers: -1 }, { readWorkers: 1.5 }, { maxPages: 0 }, { timeouts: { entry: -1 } }, { subtype: 'a b' }, { fsname: 'x,y' }, { readAheadKiB: -1 }];
    // A device path that does not exist: reaching the device check would throw FuseDeviceError.
    for (const o of bad) {
      await assert.rejects(FuseServer.mount({ mountpoint: mp, fs: { module: MEMFS_MODULE }, devicePath: join(dir, 'none'), ...o }), RangeError, JSON.stringify(o));
    }
    await assert.rejects(FuseServer.mount({ mountpoint: mp, fs: createFileSystem({}), readWorkers: 1 }), /read workers need the FileSystem as \{module, options\}/);
    assert.equal(findMount(mp), undefined);
  });
});

