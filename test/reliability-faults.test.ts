/**
 * Issue 7, faults: what happens to a live `atomfs mount` (and `atomfs sqfs mount`) when its
 * server is killed or told to stop, when the layer file changes under it, when its directory
 * moves or disappears, and when the environment denies what a mount needs (/dev/fuse, file
 * descriptors, a free target). In every case: no wrong bytes, no crash of the server, clear
 * one-line errors, and `atomfs umount` leaves no mount, server or metadir behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { ensureTestUser, isMounted, makeContent, makeTempDir, processCleanup, run, useCleanup, type CleanupStack } from './lib/index.js';
import {
  alive,
  appendVerity,
  assertOneLineError,
  atomfs,
  ATOMFS,
  checkContent,
  describe,
  expectedHashes,
  guardNoDebris,
  guardOciMount,
  guardSqfsMount,
  killQuietly,
  makeLayout,
  metadirOf,
  mksquashfs,
  mountsUnder,
  readMountNs,
  readRecord,
  runBounded,
  serversUnder,
  sqfsServerPid,
  waitGone,
  walkInWorker,
  type LayerFile,
} from './reliability-common.js';

const USER = 'atomfs-test-relf';

interface Fixture {
  base: LayerFile & { src: string };
  top: LayerFile & { src: string };
  /** Same names as base, other bytes: what a swapped-in wrong image would serve. */
  twin: string;
  /** base with uncompressed data and fragments: a lost block there could pass as zeros. */
  basePlain: string;
  expected: Map<string, string>;
  baseOnly: Map<string, string>;
}

let fx: Fixture;

function fill(dir: string, seed: number): void {
  mkdirSync(join(dir, 'etc'), { recursive: true });
  mkdirSync(join(dir, 'files'));
  writeFileSync(join(dir, 'etc/os-release'), `NAME=reliability\nSEED=${seed}\n`);
  writeFileSync(join(dir, 'big.bin'), makeContent('random', 6 << 20, seed));
  writeFileSync(join(dir, 'text.txt'), makeContent('text', 1 << 20, seed + 1));
  for (let i = 0; i < 40; i++) writeFileSync(join(dir, 'files', `f${String(i).padStart(3, '0')}`), makeContent('mixed', 20_000 + i * 97, seed * 100 + i));
}

before(async () => {
  const work = makeTempDir('rel-faults-fixture', processCleanup);
  chmodSync(work, 0o755);
  const baseSrc = join(work, 'base');
  const topSrc = join(work, 'top');
  const twinSrc = join(work, 'twin');
  fill(baseSrc, 1);
  fill(twinSrc, 2);
  mkdirSync(join(topSrc, 'etc'), { recursive: true });
  writeFileSync(join(topSrc, 'etc/motd'), 'top layer\n');
  writeFileSync(join(topSrc, 'top.bin'), makeContent('random', 1 << 20, 9));
  const base = join(work, 'base.sqfs');
  const top = join(work, 'top.sqfs');
  const twin = join(work, 'twin.sqfs');
  await mksquashfs(baseSrc, base, ['-comp', 'gzip']);
  await mksquashfs(topSrc, top, ['-comp', 'zstd']);
  await mksquashfs(twinSrc, twin, ['-comp', 'gzip']);
  const basePlain = join(work, 'base-plain.sqfs');
  await mksquashfs(baseSrc, basePlain, ['-comp', 'gzip', '-noD', '-noF']);
  fx = {
    base: { file: base, rootHash: await appendVerity(base), src: baseSrc },
    top: { file: top, rootHash: await appendVerity(top), src: topSrc },
    twin,
    basePlain,
    expected: expectedHashes([baseSrc, topSrc]),
    baseOnly: expectedHashes([baseSrc]),
  };
});

interface Mounted {
  dir: string;
  mp: string;
  runDir: string;
  ref: string;
  blobs: string[];
  pid: number;
}

/** A fresh layout (its blobs are ours to damage) mounted with the FUSE server at DIR/mp. */
async function mountImage(stack: CleanupStack, name: string, opts: { mp?: string } = {}): Promise<Mounted> {
  const dir = makeTempDir(name, stack);
  guardNoDebris(stack, dir);
  const blobs = await makeLayout(join(dir, 'oci'), 'img', [fx.base, fx.top]);
  const mp = opts.mp ?? join(dir, 'mp');
  mkdirSync(mp, { recursive: true });
  const runDir = join(dir, 'run');
  const ref = `${join(dir, 'oci')}:img`;
  guardOciMount(stack, runDir, mp);
  const r = await atomfs(['mount', '--backend', 'fuse', '--metadir', runDir, ref, mp]);
  assert.equal(r.status, 0, `mount: ${describe(r)}`);
  const pid = readRecord(runDir, mp)?.serverPid;
  assert.ok(pid !== undefined && alive(pid), 'a live server is recorded');
  return { dir, mp, runDir, ref, blobs, pid };
}

async function catOk(path: string): Promise<Buffer> {
  const r = await runBounded(['cat', path]);
  assert.equal(r.status, 0, `cat ${path}: ${describe(r)}`);
  return r.stdout;
}

/** After `atomfs umount`: nothing of the mount is left. */
async function assertGone(m: Pick<Mounted, 'dir' | 'mp' | 'runDir'>, pid: number, mntns?: string): Promise<void> {
  assert.ok(await waitGone(pid, 10_000), `server ${pid} ended`);
  assert.deepEqual(mountsUnder(m.dir), [], 'no mount left');
  assert.equal(existsSync(metadirOf(m.runDir, m.mp, mntns)), false, 'metadir removed');
  assert.deepEqual(serversUnder(m.dir), [], 'no server left');
}

test('server killed with SIGKILL: users get ENOTCONN at once, atomfs umount cleans everything, the target is reusable', async (t) => {
  const stack = useCleanup(t);
  const m = await mountImage(stack, 'rel-kill');
  assert.equal((await catOk(join(m.mp, 'etc/motd'))).toString(), 'top layer\n');
  process.kill(m.pid, 'SIGKILL');
  assert.ok(await waitGone(m.pid, 5000));
  const ls = await runBounded(['ls', m.mp], 10_000);
  assert.match(ls.stderr.toString(), /Transport endpoint is not connected|Software caused connection abort/, `a dead mount fails fast: ${describe(ls)}`);
  const u = await atomfs(['umount', '--metadir', m.runDir, m.mp]);
  assert.equal(u.status, 0, `atomfs umount of a dead mount: ${describe(u)}`);
  await assertGone(m, m.pid);
  // The stale state is gone for good: the same target mounts again.
  const r = await atomfs(['mount', '--backend', 'fuse', '--metadir', m.runDir, m.ref, m.mp]);
  assert.equal(r.status, 0, `remount: ${describe(r)}`);
  const pid2 = readRecord(m.runDir, m.mp)!.serverPid!;
  assert.equal((await catOk(join(m.mp, 'etc/motd'))).toString(), 'top layer\n');
  assert.equal((await atomfs(['umount', '--metadir', m.runDir, m.mp])).status, 0);
  await assertGone(m, pid2);
});

test('SIGTERM: the server unmounts, serves a file still open until it is closed, exits; metadir stays until atomfs umount', async (t) => {
  const stack = useCleanup(t);
  const m = await mountImage(stack, 'rel-term');
  // A reader that opened big.bin before the signal and reads it only afterwards.
  const holder = spawn('sh', ['-c', 'exec 3< "$1"; read go; sha256sum <&3', 'sh', join(m.mp, 'big.bin')], { stdio: ['pipe', 'pipe', 'pipe'] });
  stack.add('holder', () => holder.kill('SIGKILL'));
  const holderOut = new Promise<string>((resolve) => {
    let out = '';
    holder.stdout.on('data', (d: Buffer) => (out += d.toString()));
    holder.on('close', () => resolve(out));
  });
  // The open happened once the fd shows up in the holder's fd table.
  for (let i = 0; i < 100; i++) {
    try {
      if (readFileSync(`/proc/${holder.pid}/fdinfo/3`, 'utf8')) break;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  process.kill(m.pid, 'SIGTERM');
  for (let i = 0; i < 200 && isMounted(m.mp); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(isMounted(m.mp), false, 'the server detached its mount on SIGTERM');
  assert.ok(alive(m.pid), 'the server lives on while a file of its (detached) mount is open');
  holder.stdin.end('go\n');
  const sum = (await holderOut).split(' ')[0];
  assert.equal(sum, fx.expected.get('/big.bin'), 'the open file read to the end with the right bytes');
  assert.ok(await waitGone(m.pid, 10_000), 'the server exits once the last file is closed');
  const metadir = metadirOf(m.runDir, m.mp);
  assert.ok(existsSync(join(metadir, 'config.json')), 'the metadir stays until atomfs umount');
  assert.match(readFileSync(join(metadir, 'server.log'), 'utf8'), /SIGTERM|unmounted/, 'the server log says why it ended');
  const u = await atomfs(['umount', '--metadir', m.runDir, m.mp]);
  assert.equal(u.status, 0, `atomfs umount after SIGTERM: ${describe(u)}`);
  await assertGone(m, m.pid);
});

/** Walk the mount, allowing only `allowed` errors and never a wrong byte. */
async function walkChecked(mp: string, pid: number, expected: Map<string, string>, allowed: string[]): Promise<{ good: number; errors: Record<string, number> }> {
  const w = await walkInWorker(mp, { hashes: true, maxFileBytes: 64 << 20 }, 90_000, () => killQuietly(pid));
  assert.ok(w.summary, `walk finished: ${w.hang}`);
  const c = checkContent(w.summary, expected);
  assert.deepEqual(c.wrong, [], 'never wrong bytes');
  assert.deepEqual(c.unknown, [], 'no files from elsewhere');
  for (const code of Object.keys(c.errors)) assert.ok(allowed.includes(code), `only ${allowed.join('/')} errors, got ${code}: ${w.summary.samples.join('; ')}`);
  return { good: c.good, errors: c.errors };
}

test('layer blob truncated under a live mount: reads of lost blocks fail with EIO, the server lives, umount works', async (t) => {
  const stack = useCleanup(t);
  // Verified layers (atomfs mount, FUSE server + dm-verity).
  const m = await mountImage(stack, 'rel-trunc');
  assert.equal((await catOk(join(m.mp, 'etc/os-release'))).toString(), 'NAME=reliability\nSEED=1\n');
  truncateSync(m.blobs[0]!, 128 * 1024);
  const r = await walkChecked(m.mp, m.pid, fx.expected, ['EIO']);
  t.diagnostic(`verified, truncated: ${r.good} files intact, errors ${JSON.stringify(r.errors)}`);
  assert.ok((r.errors['EIO'] ?? 0) > 0, 'the lost blocks read as EIO');
  assert.ok(alive(m.pid), 'server alive');
  assert.equal((await catOk(join(m.mp, 'top.bin'))).length, 1 << 20, 'the intact layer still serves');
  assert.equal((await atomfs(['umount', '--metadir', m.runDir, m.mp])).status, 0);
  await assertGone(m, m.pid);

  // An unverified image (atomfs sqfs mount) with uncompressed data: short reads must still be
  // errors, not zeros.
  const dir = makeTempDir('rel-trunc-sqfs', stack);
  guardNoDebris(stack, dir);
  const img = join(dir, 'base.sqfs');
  copyFileSync(fx.basePlain, img);
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  guardSqfsMount(stack, mp);
  const s = await atomfs(['sqfs', 'mount', '--read-workers', '2', img, mp]);
  assert.equal(s.status, 0, describe(s));
  const pid = sqfsServerPid(mp)!;
  assert.ok(pid !== undefined);
  // Look everything up first (metadata sits at the end of an image, and the server caches it),
  // then cut into the data: the tail of the data area (fragments) and every table is lost.
  const pre = await walkInWorker(mp, { maxFileBytes: 0 }, 60_000, () => killQuietly(pid));
  assert.deepEqual(pre.summary?.errors, {}, 'intact before the cut');
  // One read through a fragment loads the fragment table, so lost fragments are read (not
  // refused for want of the table): that is where zeros could pass for data.
  assert.equal((await catOk(join(mp, 'etc/os-release'))).toString(), 'NAME=reliability\nSEED=1\n');
  const cut = Number(readFileSync(img).readBigUInt64LE(64)) - 16 * 1024;
  truncateSync(img, cut);
  const r2 = await walkChecked(mp, pid, fx.baseOnly, ['EIO']);
  t.diagnostic(`unverified, truncated: ${r2.good} files intact, errors ${JSON.stringify(r2.errors)}`);
  assert.ok((r2.errors['EIO'] ?? 0) > 0, 'the lost blocks read as EIO');
  assert.ok(alive(pid), 'server alive');
  assert.equal((await atomfs(['sqfs', 'umount', mp])).status, 0);
  assert.ok(await waitGone(pid, 10_000));
  assert.deepEqual(mountsUnder(dir), []);
});

test('layer blob replaced (renamed over) under a live mount: the server keeps serving what it opened, never the new bytes', async (t) => {
  const stack = useCleanup(t);
  const m = await mountImage(stack, 'rel-replace');
  // A different, valid, verity-formatted layer takes the base blob's name.
  copyFileSync(fx.top.file, `${m.blobs[0]}.new`);
  renameSync(`${m.blobs[0]}.new`, m.blobs[0]!);
  const r = await walkChecked(m.mp, m.pid, fx.expected, ['EIO']);
  t.diagnostic(`verified, replaced: ${r.good} files intact, errors ${JSON.stringify(r.errors)}`);
  assert.equal(r.good, fx.expected.size, 'the open blob keeps serving every file');
  assert.ok(alive(m.pid));
  assert.equal((await atomfs(['umount', '--metadir', m.runDir, m.mp])).status, 0);
  await assertGone(m, m.pid);

  // Unverified, with read worker threads (each opened the image itself): an image with the same
  // names and other bytes renamed over it must not leak through any thread.
  const dir = makeTempDir('rel-replace-sqfs', stack);
  guardNoDebris(stack, dir);
  const img = join(dir, 'base.sqfs');
  copyFileSync(fx.base.file, img);
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  guardSqfsMount(stack, mp);
  const s = await atomfs(['sqfs', 'mount', '--read-workers', '2', img, mp]);
  assert.equal(s.status, 0, describe(s));
  const pid = sqfsServerPid(mp)!;
  copyFileSync(fx.twin, `${img}.new`);
  renameSync(`${img}.new`, img);
  const r2 = await walkChecked(mp, pid, fx.baseOnly, []);
  assert.equal(r2.good, fx.baseOnly.size, 'every file as it was when mounted');
  assert.equal((await atomfs(['sqfs', 'umount', mp])).status, 0);
  assert.ok(await waitGone(pid, 10_000));
});

test("mountpoint's parent renamed: atomfs umount at the new path ends the mount and removes the old path's metadata", async (t) => {
  const stack = useCleanup(t);
  const outer = makeTempDir('rel-mv', stack);
  const m = await mountImage(stack, 'rel-mv-img', { mp: join(outer, 'p1', 'mp') });
  renameSync(join(outer, 'p1'), join(outer, 'p2'));
  const moved = join(outer, 'p2', 'mp');
  assert.ok(isMounted(moved), 'the mount moved with its parent');
  assert.equal((await catOk(join(moved, 'etc/motd'))).toString(), 'top layer\n', 'and still serves');
  const u = await atomfs(['umount', '--metadir', m.runDir, moved]);
  assert.equal(u.status, 0, `atomfs umount NEWPATH: ${describe(u)}`);
  assert.ok(await waitGone(m.pid, 10_000));
  assert.equal(isMounted(moved), false);
  assert.equal(existsSync(metadirOf(m.runDir, m.mp)), false, "the old path's metadir is removed too");
  assert.equal(existsSync(metadirOf(m.runDir, moved)), false);
  // The old path's umount is now a clear no-op error, not a crash.
  const again = await atomfs(['umount', '--metadir', m.runDir, m.mp]);
  assert.match(assertOneLineError(again, 'umount of the old path'), /is not an atomfs mountpoint/);
});

test("mountpoint's parent removed from another mount namespace: the kernel detaches the mount, the server exits, atomfs umount cleans up", async (t) => {
  const stack = useCleanup(t);
  const dir = makeTempDir('rel-rmparent', stack);
  guardNoDebris(stack, dir);
  await makeLayout(join(dir, 'oci'), 'img', [fx.base, fx.top]);
  const parent = join(dir, 'parent');
  const mp = join(parent, 'mp');
  mkdirSync(mp, { recursive: true });
  const runDir = join(dir, 'run');
  // The mount lives in a private mount namespace (as an unprivileged user's would); its shell
  // waits for a line on stdin, then runs atomfs umount there.
  const script = `"$@" mount --backend fuse --metadir ${runDir} ${join(dir, 'oci')}:img ${mp} || exit 9; echo mounted; read go; "$@" umount --metadir ${runDir} ${mp}; echo "umount rc=$?"`;
  const child = spawn('unshare', ['-m', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', process.execPath, ATOMFS], { stdio: ['pipe', 'pipe', 'pipe'] });
  stack.add('namespace shell', () => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  for (let i = 0; i < 600 && !out.includes('mounted') && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(out.includes('mounted'), `mounted in the namespace: ${out} ${err}`);
  const ns = readMountNs(child.pid!);
  const pid = readRecord(runDir, mp, ns)?.serverPid;
  assert.ok(pid !== undefined && alive(pid), 'server running');
  assert.equal(isMounted(mp), false, 'not mounted in our namespace');
  // Here the directory is no mountpoint: removing it succeeds and detaches the other mount.
  await run(['rm', '-rf', parent]);
  assert.ok(await waitGone(pid, 15_000), 'the server ends once the kernel detached its mount');
  child.stdin.end('go\n');
  await closed;
  assert.match(out, /umount rc=0/, `atomfs umount in the namespace: ${out} ${err}`);
  assert.equal(existsSync(metadirOf(runDir, mp, ns)), false, 'metadir removed');
  assert.deepEqual(serversUnder(dir), []);
});

test('/dev/fuse not accessible to a non-root user in a user namespace: a clear error naming /dev/fuse and the fix, nothing mounted', async (t) => {
  const stack = useCleanup(t);
  const user = ensureTestUser(USER, stack);
  const dir = makeTempDir('rel-devfuse', stack);
  guardNoDebris(stack, dir);
  chmodSync(dir, 0o755);
  await makeLayout(join(dir, 'oci'), 'img', [fx.base, fx.top]);
  const home = join(dir, 'user');
  mkdirSync(join(home, 'mp'), { recursive: true });
  mkdirSync(join(home, 'mp2'));
  for (const p of [home, join(home, 'mp'), join(home, 'mp2')]) chownSync(p, user.uid, user.gid);
  const devdir = join(dir, 'dev');
  mkdirSync(devdir);
  const hostMode = statSync('/dev/fuse').mode & 0o777;
  // Only inside a private mount namespace does /dev/fuse become a 0600 node (the host's stays as
  // it is, so concurrent tests are not affected); the positive control makes it 0666 again.
  const asUser = (args: string) => `runuser -u ${USER} -- unshare -Umr -- env HOME=${home} TMPDIR=${home} ${process.execPath} ${ATOMFS} ${args}`;
  const script = [
    'set -u',
    `mount -t tmpfs -o mode=0755,size=64k atomfs-devfuse ${devdir}`,
    `mknod -m 0600 ${devdir}/fuse c 10 229`,
    `mount --bind ${devdir}/fuse /dev/fuse`,
    `${asUser(`mount --metadir ${home}/run ${dir}/oci:img ${home}/mp`)} >${dir}/mount.out 2>${dir}/mount.err; echo $? >${dir}/mount.rc`,
    `${asUser(`sqfs mount ${fx.base.file} ${home}/mp2`)} >${dir}/sqfs.out 2>${dir}/sqfs.err; echo $? >${dir}/sqfs.rc`,
    `chmod 0666 ${devdir}/fuse`,
    `runuser -u ${USER} -- unshare -Umr -- sh -c '${process.execPath} ${ATOMFS} mount --metadir ${home}/run ${dir}/oci:img ${home}/mp && cat ${home}/mp/etc/motd && ${process.execPath} ${ATOMFS} umount --metadir ${home}/run ${home}/mp' >${dir}/ok.out 2>${dir}/ok.err; echo $? >${dir}/ok.rc`,
  ].join('\n');
  const r = await run(['unshare', '-m', '--propagation', 'private', '--', 'sh', '-c', script], { allowFail: true, timeoutMs: 120_000 });
  assert.equal(r.status, 0, `namespace script: ${describe(r)}`);
  const res = (n: string) => ({
    status: Number(readFileSync(join(dir, `${n}.rc`), 'utf8')),
    signal: null,
    stdout: readFileSync(join(dir, `${n}.out`)),
    stderr: readFileSync(join(dir, `${n}.err`)),
  });
  for (const n of ['mount', 'sqfs']) {
    const line = assertOneLineError(res(n), `${n} without /dev/fuse access`);
    assert.match(line, /\/dev\/fuse/, `${n}: names the device: ${line}`);
    assert.match(line, /permission denied/i, `${n}: says what is wrong: ${line}`);
    assert.match(line, /chmod 0666 \/dev\/fuse/, `${n}: says what to do: ${line}`);
  }
  const ok = res('ok');
  assert.equal(ok.status, 0, `the same steps work with a 0666 /dev/fuse (control): ${describe(ok)}`);
  assert.equal(ok.stdout.toString(), 'top layer\n');
  assert.equal(statSync('/dev/fuse').mode & 0o777, hostMode, "the host's /dev/fuse is untouched");
  assert.deepEqual(readdirNames(join(home, 'run')), [], 'no metadata left');
});

/** Mount metadirs under a run dir (meta/<ns>/ itself may stay, empty, as in Go atomfs). */
function readdirNames(runDir: string): string[] {
  const meta = join(runDir, 'meta');
  if (!existsSync(meta)) return [];
  return readdirSync(meta).flatMap((ns) => readdirSync(join(meta, ns)).map((d) => `${ns}/${d}`));
}

test('out of file descriptors: a clear one-line error, nothing mounted, no server, no metadir', async (t) => {
  const stack = useCleanup(t);
  const dir = makeTempDir('rel-nofile', stack);
  guardNoDebris(stack, dir);
  await makeLayout(join(dir, 'oci'), 'img', [fx.base, fx.top]);
  // Many layers: the CLI loads with this limit, but cannot hold every layer open.
  await makeLayout(join(dir, 'oci'), 'many', Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? fx.base : fx.top)));
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  const runDir = join(dir, 'run');
  guardOciMount(stack, runDir, mp);
  guardSqfsMount(stack, mp);
  const cases: [string, number, string[]][] = [
    ['atomfs mount, nofile 20', 20, ['mount', '--backend', 'fuse', '--metadir', runDir, `${join(dir, 'oci')}:img`, mp]],
    ['atomfs sqfs mount, nofile 20', 20, ['sqfs', 'mount', fx.base.file, mp]],
    ['atomfs mount of 300 layers, nofile 200', 200, ['mount', '--backend', 'fuse', '--metadir', runDir, `${join(dir, 'oci')}:many`, mp]],
  ];
  for (const [what, n, args] of cases) {
    const r = await atomfs(args, { prefix: ['prlimit', `--nofile=${n}`, '--'] });
    const line = assertOneLineError(r, what);
    assert.match(line, /too many open files|open-file limit|EMFILE/i, `${what}: says why: ${line}`);
    t.diagnostic(`${what}: ${line.slice(0, 200)}`);
    assert.deepEqual(mountsUnder(dir), [], `${what}: nothing mounted`);
    assert.deepEqual(serversUnder(dir), [], `${what}: no server`);
    assert.equal(existsSync(metadirOf(runDir, mp)), false, `${what}: no metadir`);
  }
  // Control: the same mount with the default limit works.
  const ok = await atomfs(['mount', '--backend', 'fuse', '--metadir', runDir, `${join(dir, 'oci')}:img`, mp]);
  assert.equal(ok.status, 0, describe(ok));
  assert.equal((await atomfs(['umount', '--metadir', runDir, mp])).status, 0);
});

test('a second mount at a target that is in use is refused clearly; the first keeps serving, unchanged', async (t) => {
  const stack = useCleanup(t);
  const m = await mountImage(stack, 'rel-twice');
  const configFile = join(metadirOf(m.runDir, m.mp), 'config.json');
  const config = readFileSync(configFile);
  for (const backend of ['fuse', 'auto']) {
    const r = await atomfs(['mount', '--backend', backend, '--metadir', m.runDir, m.ref, m.mp]);
    const line = assertOneLineError(r, `second atomfs mount (${backend})`);
    assert.match(line, /already mounted|already a mountpoint/, line);
    assert.match(line, /atomfs umount/, `says what to do: ${line}`);
  }
  const s = await atomfs(['sqfs', 'mount', fx.base.file, m.mp]);
  assert.match(assertOneLineError(s, 'sqfs mount over it'), /already a mountpoint/);
  assert.ok(readFileSync(configFile).equals(config), 'the first mount’s metadata is unchanged');
  assert.ok(alive(m.pid));
  assert.equal((await catOk(join(m.mp, 'etc/motd'))).toString(), 'top layer\n', 'the first mount still serves');
  assert.equal(mountsUnder(m.dir).length, 1, 'exactly one mount');
  assert.equal((await atomfs(['umount', '--metadir', m.runDir, m.mp])).status, 0);
  await assertGone(m, m.pid);
});
