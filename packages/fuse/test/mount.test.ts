/**
 * Real kernel mounts (as root) of the in-memory tree, in three set-ups: worker mode with read
 * workers, worker mode without (and zero cache timeouts), and in-thread mode in a child
 * process. Everything the kernel shows is compared with the tree.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findMount, FuseServer, type ReaddirplusMode } from '../src/index.js';
import {
  type FixtureServer,
  fuseMountsUnder,
  isProcessAlive,
  makeTempDir,
  MEMFS_MODULE,
  removeTempDir,
  run,
  runOk,
  startFixtureServer,
  stopFixtureServer,
  waitFor,
} from './helpers.js';
import { buildNodes, type MemNode, standardTree } from './memfs.js';
import { checkAttributes, checkContent, checkDevicesWithStatTool, checkListings, checkOddReads, checkSymlinks, checkXattrs } from './tree-check.js';

const nodes: MemNode[] = buildNodes(standardTree());
const dir700 = nodes.find((n) => n.path === 'dir700')!;

function errCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
  return undefined;
}

interface Setup {
  name: string;
  mp: () => string;
  allowOther: boolean;
  subtype: string;
  fsname: string;
  /** Log text the server produced so far. */
  logText: () => string;
}

/** The checks every set-up must pass. */
function commonChecks(s: Setup): void {
  it('shows every attribute (lstat, nanosecond times, devices)', async () => {
    checkAttributes(s.mp(), nodes);
    await checkDevicesWithStatTool(s.mp(), nodes);
  });

  it('lists directories in order with . and .. (ls -f), 700-entry directory included', async () => {
    await checkListings(s.mp(), nodes);
  });

  it('reads symlink targets', () => {
    checkSymlinks(s.mp(), nodes);
  });

  it('shows xattrs as getfattr -d -m - -e hex sees them (3000-byte value included)', async () => {
    await checkXattrs(s.mp(), nodes);
  });

  it('serves file content (bytes and sha256sum)', async () => {
    await checkContent(s.mp(), nodes);
  });

  it('serves reads at odd offsets and lengths', () => {
    checkOddReads(s.mp(), nodes);
  });

  it('answers ENOENT for missing names (also when asked again) and ENOTDIR below files', () => {
    const missing = join(s.mp(), 'no-such-file');
    assert.equal(errCode(() => lstatSync(missing)), 'ENOENT');
    assert.equal(errCode(() => lstatSync(missing)), 'ENOENT');
    assert.equal(errCode(() => readFileSync(join(s.mp(), 'sub', 'nope'))), 'ENOENT');
    assert.equal(errCode(() => lstatSync(join(s.mp(), 'one', 'x'))), 'ENOTDIR');
  });

  it('refuses every write with EROFS', async () => {
    const p = (name: string): string => join(s.mp(), name);
    assert.equal(errCode(() => writeFileSync(p('new-file'), 'x')), 'EROFS');
    assert.equal(errCode(() => openSync(p('one'), 'r+')), 'EROFS');
    assert.equal(errCode(() => mkdirSync(p('new-dir'))), 'EROFS');
    assert.equal(errCode(() => unlinkSync(p('one'))), 'EROFS');
    assert.equal(errCode(() => rmdirSync(p('sub/emptydir'))), 'EROFS');
    assert.equal(errCode(() => renameSync(p('one'), p('two'))), 'EROFS');
    assert.equal(errCode(() => symlinkSync('x', p('new-link'))), 'EROFS');
    assert.equal(errCode(() => utimesSync(p('one'), 1, 1)), 'EROFS');
    assert.equal(errCode(() => chmodSync(p('one'), 0o600)), 'EROFS');
    assert.equal(errCode(() => truncateSync(p('one'), 0)), 'EROFS');
    for (const [cmd, args] of [
      ['touch', [p('one')]],
      ['touch', [p('created')]],
      ['mkdir', [p('made')]],
      ['rm', ['-f', p('f4095')]],
      ['setfattr', ['-n', 'user.x', '-v', '1', p('one')]],
    ] as [string, string[]][]) {
      const r = await run(cmd, args);
      assert.notEqual(r.code, 0, `${cmd} ${args.join(' ')} must fail`);
      assert.match(r.stderr, /Read-only file system/, `${cmd}: ${r.stderr}`);
    }
    assert.equal(lstatSync(p('one')).size, 1);
  });

  it('answers EIO when the FileSystem throws, EACCES when it says so, and keeps serving', async () => {
    assert.equal(errCode(() => readFileSync(join(s.mp(), 'crash'))), 'EIO');
    assert.equal(errCode(() => readFileSync(join(s.mp(), 'denied'))), 'EACCES');
    await waitFor('log line', () => s.logText().includes('simulated failure reading crash'));
    assert.equal(readFileSync(join(s.mp(), 'with space'), 'latin1').length, 10);
  });

  it('reports statfs (stat -f)', async () => {
    const out = (await runOk('stat', ['-f', '-c', '%b %f %a %c %d %s %S %l', s.mp()])).trim();
    assert.equal(out, `123456 0 0 ${nodes.length} 0 4096 4096 255`);
  });

  it('is mounted read-only, nosuid, nodev, default_permissions, with the given type and source', () => {
    const m = findMount(s.mp());
    assert.ok(m, 'mount visible in mountinfo');
    assert.equal(m.fstype, `fuse.${s.subtype}`);
    assert.equal(m.source, s.fsname);
    const opts = m.options.split(',');
    for (const o of ['ro', 'nosuid', 'nodev']) assert.ok(opts.includes(o), `mount option ${o} in ${m.options}`);
    const sopts = m.superOptions.split(',');
    for (const o of ['default_permissions', 'user_id=0', 'group_id=0']) assert.ok(sopts.includes(o), `${o} in ${m.superOptions}`);
    assert.equal(sopts.includes('allow_other'), s.allowOther, `allow_other in ${m.superOptions}`);
  });
}

function inProcessSuite(title: string, opts: { readWorkers: number; readdirplus: ReaddirplusMode; zeroTimeouts: boolean }): void {
  describe(title, () => {
    let dir = '';
    let mp = '';
    let logPath = '';
    let logFd = -1;
    let server: FuseServer | undefined;
    before(async () => {
      dir = makeTempDir();
      mp = join(dir, 'mnt');
      mkdirSync(mp);
      logPath = join(dir, 'server.log');
      logFd = openSync(logPath, 'a');
      server = await FuseServer.mount({
        mountpoint: mp,
        fs: { module: MEMFS_MODULE, options: {} },
        readWorkers: opts.readWorkers,
        readdirplus: opts.readdirplus,
        subtype: 'memfs',
        fsname: 'memfs-in-process',
        logFd,
        ...(opts.zeroTimeouts ? { timeouts: { entry: 0, attr: 0, negative: 0 } } : {}),
      });
    });
    after(async () => {
      try {
        if (server) {
          const info = await server.unmount();
          assert.equal(info.reason, 'unmounted');
        }
      } finally {
        if (logFd >= 0) closeSync(logFd);
        await removeTempDir(dir);
      }
      assert.deepEqual(fuseMountsUnder(dir), []);
    });

    // Runs first: nothing below dir700 has been looked up yet.
    it(`uses ${opts.readdirplus === 'never' ? 'plain READDIR and LOOKUPs' : 'READDIRPLUS, so listed entries need no LOOKUP'}`, async () => {
      lstatSync(join(mp, 'dir700')); // the directory's own LOOKUP is not under test
      const before = server!.stats().requests;
      await runOk('ls', ['-f', join(mp, 'dir700')]);
      for (const c of dir700.children) lstatSync(join(mp, c.path));
      const after = server!.stats().requests;
      const lookups = (after.LOOKUP ?? 0) - (before.LOOKUP ?? 0);
      if (opts.readdirplus === 'never') {
        assert.equal(after.READDIRPLUS ?? 0, 0);
        assert.ok(lookups >= dir700.children.length, `LOOKUPs: ${lookups}`);
      } else {
        assert.ok((after.READDIRPLUS ?? 0) > 0);
        assert.equal(lookups, 0, 'entries came with READDIRPLUS');
      }
    });

    commonChecks({
      name: title,
      mp: () => mp,
      allowOther: false,
      subtype: 'memfs',
      fsname: 'memfs-in-process',
      logText: () => readFileSync(logPath, 'utf8'),
    });

    it(`${opts.readWorkers > 0 ? 'hands READs to the read workers' : 'answers READs on the session thread'}`, () => {
      const st = server!.stats();
      assert.ok((st.requests.READ ?? 0) > 0);
      if (opts.readWorkers > 0) assert.ok(st.forwardedReads > 0);
      else assert.equal(st.forwardedReads, 0);
      assert.ok(st.failures >= 1, 'the crash file counted as a failure');
    });

    it('raises the readahead of its mount to 1 MiB, so buffered reads come as big READs', () => {
      const m = findMount(mp)!;
      assert.equal(readFileSync(`/sys/class/bdi/${m.major}:${m.minor}/read_ahead_kb`, 'utf8').trim(), '1024');
    });

    if (!opts.zeroTimeouts) {
      it('gets FORGETs when the kernel drops its inodes', async () => {
        writeFileSync('/proc/sys/vm/drop_caches', '2');
        await waitFor('FORGET/BATCH_FORGET', () => {
          const r = server!.stats().requests;
          return (r.FORGET ?? 0) + (r.BATCH_FORGET ?? 0) > 0;
        });
        // Names are looked up again afterwards.
        checkAttributes(mp, nodes.slice(0, 5));
      });
    }
  });
}

inProcessSuite('worker mode: 2 read workers, READDIRPLUS always, long timeouts', { readWorkers: 2, readdirplus: 'always', zeroTimeouts: false });
inProcessSuite('worker mode: no read workers, no READDIRPLUS, zero timeouts', { readWorkers: 0, readdirplus: 'never', zeroTimeouts: true });

describe('in-thread mode in a child process: READDIRPLUS auto, allow_other', () => {
  let dir = '';
  let mp = '';
  let server: FixtureServer | undefined;
  before(async () => {
    dir = makeTempDir();
    mp = join(dir, 'mnt');
    mkdirSync(mp);
    server = await startFixtureServer({ mountpoint: mp, mode: 'in-thread', readdirplus: 'auto', allowOther: true, subtype: 'memfs', fsname: 'memfs-child' });
  });
  after(async () => {
    try {
      if (server) {
        await runOk('umount', [mp]);
        const exit = await server.exited;
        assert.equal(exit.code, 0, server.stderr());
        assert.ok(server.lines.some((l) => l.startsWith('closed unmounted')), server.lines.join('\n'));
        assert.equal(isProcessAlive(server.child.pid!), false);
      }
    } finally {
      try {
        if (server) await stopFixtureServer(server, mp);
      } finally {
        await removeTempDir(dir);
      }
    }
  });

  commonChecks({
    name: 'in-thread',
    mp: () => mp,
    allowOther: true,
    subtype: 'memfs',
    fsname: 'memfs-child',
    logText: () => server?.stderr() ?? '',
  });
});
