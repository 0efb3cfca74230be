/**
 * Issue 12: mount state that is owned, locked and never mistaken; processes nobody else can drive.
 * - SIGUSR1 (and NODE_OPTIONS=--inspect) must not open Node's inspector in the CLI or the server;
 * - two mounts of one target at once: exactly one wins, the other says so in one line;
 * - look-alike targets (a-b, a/b) get distinct metadirs, named as `systemd-escape --path` does;
 * - a symlinked target is resolved once: umount through the link undoes everything;
 * - a mount killed (SIGKILL) or interrupted (SIGINT) at any instant is finished off by the next
 *   umount or mount, --writeable included;
 * - a planted or foreign record is refused, a metadir others can write too;
 * - umount of a busy --writeable mount changes nothing; a deleted metadir does not block umount.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { ensureTestUser, isMounted, makeTempDir, metadirName, processCleanup, run, runSync, sleepSync, useCleanup } from './lib/index.js';
import {
  alive,
  appendVerity,
  assertOneLineError,
  ATOMFS,
  atomfs,
  describe,
  guardNoDebris,
  guardOciMount,
  makeLayout,
  metadirOf,
  mksquashfs,
  mountsUnder,
  readMountNs,
  readRecord,
  serversUnder,
  waitGone,
} from './reliability-common.js';

const USER = 'atomfs-test-state';
let work: string;
let image: string;

before(async () => {
  work = makeTempDir('mount-state', processCleanup);
  chmodSync(work, 0o755);
  const src = join(work, 'src');
  mkdirSync(join(src, 'etc'), { recursive: true });
  writeFileSync(join(src, 'etc/hello'), 'hello from the image\n');
  const layer = join(work, 'layer.sqfs');
  await mksquashfs(src, layer, ['-comp', 'gzip']);
  await makeLayout(join(work, 'oci'), 'img', [{ file: layer, rootHash: await appendVerity(layer) }]);
  image = `${join(work, 'oci')}:img`;
});

/** atomfs ARGS must succeed. */
async function atomfsOk(args: readonly string[]): Promise<void> {
  const r = await atomfs(args);
  assert.equal(r.status, 0, `atomfs ${args.join(' ')}: ${describe(r)}`);
}

/** A fresh run dir and target dir for one test, torn down with it. */
function setup(t: Parameters<typeof useCleanup>[0], name: string): { runDir: string; dir: string; stack: ReturnType<typeof useCleanup> } {
  const stack = useCleanup(t);
  const dir = join(work, name);
  mkdirSync(dir);
  stack.add(`rm ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  guardNoDebris(stack, dir);
  const runDir = join(dir, 'run');
  return { runDir, dir, stack };
}

/** TCP sockets `pid` listens on (ss -ltnp), as "addr:port". */
function listeningSockets(pid: number): string[] {
  const out = runSync(['ss', '-ltnpH'], { allowFail: true }).stdout.toString('utf8');
  return out
    .split('\n')
    .filter((l) => l.includes(`pid=${pid},`))
    .map((l) => l.trim().split(/\s+/)[3] ?? l);
}

test('SIGUSR1 opens no inspector in the CLI or the server, nor does --inspect given to node (ss -ltn); neither process dies of it', async (t) => {
  const { runDir, dir } = setup(t, 'inspector');
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  guardOciMount(useCleanup(t), runDir, mp);
  // `node --inspect bin/atomfs` (what NODE_OPTIONS=--inspect does where the #! line is not used):
  // Node listens before our first line runs; from then on (the first debug line), nothing may
  // listen, and SIGUSR1 every 10 ms must neither open the inspector nor end the command. (Node 20
  // cannot refuse a SIGUSR1 during its own start-up, before any script runs: see README.)
  const env = { ...process.env };
  delete env.ATOMFS_TEST_RUN_DIR;
  const cli = spawn(process.execPath, ['--inspect=127.0.0.1:0', ATOMFS, '--debug', 'mount', '--metadir', runDir, image, mp], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let pinger: NodeJS.Timeout | undefined;
  const seen: string[] = [];
  cli.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (pinger === undefined && stderr.includes('atomfs: ')) {
      pinger = setInterval(() => {
        try {
          seen.push(...listeningSockets(cli.pid!));
          cli.kill('SIGUSR1');
        } catch {
          // exited
        }
      }, 10);
    }
  });
  const code = await new Promise<number | null>((r) => cli.once('exit', (c) => r(c)));
  clearInterval(pinger);
  assert.equal(code, 0, `the mount survives SIGUSR1: ${stderr}`);
  assert.ok(pinger !== undefined, 'signals were sent while the CLI ran');
  assert.deepEqual(seen, [], 'the CLI listened on no TCP port once its code ran');
  const pid = readRecord(runDir, mp)?.serverPid;
  assert.ok(pid !== undefined && alive(pid), 'server running');
  for (let i = 0; i < 3; i++) {
    process.kill(pid, 'SIGUSR1');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(listeningSockets(pid), [], `server ${pid} listens on nothing after SIGUSR1 #${i + 1}`);
  }
  assert.ok(alive(pid), 'the server ignores SIGUSR1');
  assert.equal(readFileSync(join(mp, 'etc/hello'), 'utf8'), 'hello from the image\n');
  // Control: a plain node process does open the inspector on SIGUSR1 here (so the check can fail).
  const control = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  control.kill('SIGUSR1');
  await new Promise((r) => setTimeout(r, 500));
  const controlSockets = listeningSockets(control.pid!);
  control.kill('SIGKILL');
  assert.notDeepEqual(controlSockets, [], 'control: a plain node listens after SIGUSR1');
  const u = await atomfs(['umount', '--metadir', runDir, mp]);
  assert.equal(u.status, 0, describe(u));
});

test('NODE_OPTIONS reaches neither the server nor (through the #! line) the CLI: --inspect-brk there neither stops nor listens', async (t) => {
  const { runDir, dir } = setup(t, 'node-options');
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  guardOciMount(useCleanup(t), runDir, mp);
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '--inspect-brk=127.0.0.1:0' };
  delete env.ATOMFS_TEST_RUN_DIR;
  const r = await run([ATOMFS, 'mount', '--metadir', runDir, image, mp], { env, timeoutMs: 30_000, allowFail: true });
  assert.equal(r.status, 0, describe(r));
  assert.doesNotMatch(r.stderr.toString(), /Debugger listening/);
  const pid = readRecord(runDir, mp)?.serverPid;
  assert.ok(pid !== undefined && alive(pid), 'server running');
  assert.doesNotMatch(readFileSync(`/proc/${pid}/environ`, 'utf8'), /NODE_OPTIONS/, 'the server does not inherit NODE_OPTIONS');
  assert.deepEqual(listeningSockets(pid), []);
  const u = await atomfs(['umount', '--metadir', runDir, mp]);
  assert.equal(u.status, 0, describe(u));
});

test('two mounts of one target at the same moment: exactly one wins, the other fails with one line; one mount, one server', async (t) => {
  const { runDir, dir, stack } = setup(t, 'race');
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  guardOciMount(stack, runDir, mp);
  for (let i = 0; i < 8; i++) {
    const [a, b] = await Promise.all([atomfs(['mount', '--metadir', runDir, image, mp]), atomfs(['mount', '--metadir', runDir, image, mp])]);
    const ok = [a, b].filter((r) => r.status === 0);
    assert.equal(ok.length, 1, `try ${i}: exactly one wins: ${describe(a)} / ${describe(b)}`);
    const loser = a.status === 0 ? b : a;
    assert.match(assertOneLineError(loser, `try ${i}`), /already (being )?mounted/);
    assert.equal(mountsUnder(dir).length, 1, `try ${i}: one mount: ${mountsUnder(dir).join(', ')}`);
    assert.equal(serversUnder(runDir).length, 1, `try ${i}: one server`);
    assert.equal(readFileSync(join(mp, 'etc/hello'), 'utf8'), 'hello from the image\n');
    const u = await atomfs(['umount', '--metadir', runDir, mp]);
    assert.equal(u.status, 0, describe(u));
    assert.deepEqual(mountsUnder(dir), []);
  }
});

test('look-alike targets a-b and a/b are mounted side by side, each with its own metadir named as systemd-escape --path names it', async (t) => {
  const { runDir, dir, stack } = setup(t, 'lookalike');
  const one = join(dir, 'a-b');
  const two = join(dir, 'a', 'b');
  mkdirSync(one);
  mkdirSync(two, { recursive: true });
  guardOciMount(stack, runDir, one);
  guardOciMount(stack, runDir, two);
  for (const mp of [one, two]) {
    const r = await atomfs(['mount', '--metadir', runDir, image, mp]);
    assert.equal(r.status, 0, describe(r));
  }
  assert.ok(isMounted(one) && isMounted(two), 'both still mounted');
  const names = [metadirName(one), metadirName(two)];
  assert.notEqual(names[0], names[1]);
  for (const mp of [one, two]) {
    assert.equal(readRecord(runDir, mp)?.mounts[0]?.target, mp, `record of ${mp} under ${metadirOf(runDir, mp)}`);
    const u = await atomfs(['umount', '--metadir', runDir, mp]);
    assert.equal(u.status, 0, describe(u));
  }
  assert.deepEqual(mountsUnder(dir), []);
});

test('a symlinked target is resolved once: mount and umount through the link leave nothing; umount by the real path works too', async (t) => {
  const { runDir, dir, stack } = setup(t, 'symlink');
  const real = join(dir, 'real');
  const link = join(dir, 'link');
  mkdirSync(real);
  symlinkSync(real, link);
  guardOciMount(stack, runDir, real);
  for (const via of [link, real]) {
    const m = await atomfs(['mount', '--metadir', runDir, image, link]);
    assert.equal(m.status, 0, describe(m));
    assert.ok(isMounted(real));
    const pid = readRecord(runDir, real)?.serverPid;
    assert.ok(pid !== undefined, 'the record is under the real path');
    const u = await atomfs(['umount', '--metadir', runDir, via]);
    assert.equal(u.status, 0, describe(u));
    assert.ok(await waitGone(pid, 5000), 'server gone');
    assert.deepEqual(mountsUnder(dir), [], `nothing mounted after umount via ${via}`);
    assert.equal(existsSync(metadirOf(runDir, real)), false);
  }
});

/** After whatever an interrupted mount left: umount (if needed), a new mount and umount all work. */
async function assertRecoverable(runDir: string, dir: string, mp: string, what: string): Promise<void> {
  const u = await atomfs(['umount', '--metadir', runDir, mp]);
  if (u.status !== 0) assert.match(u.stderr.toString(), /not an atomfs mountpoint/, `${what}: umount: ${describe(u)}`);
  assert.deepEqual(mountsUnder(dir), [], `${what}: nothing mounted after umount`);
  for (let i = 0; i < 50 && serversUnder(runDir).length > 0; i++) sleepSync(100);
  assert.deepEqual(serversUnder(runDir), [], `${what}: no server after umount`);
  const m = await atomfs(['mount', '--writeable', '--metadir', runDir, image, mp]);
  assert.equal(m.status, 0, `${what}: mount again: ${describe(m)}`);
  writeFileSync(join(mp, 'new-file'), 'x');
  const u2 = await atomfs(['umount', '--metadir', runDir, mp]);
  assert.equal(u2.status, 0, `${what}: umount again: ${describe(u2)}`);
  assert.deepEqual(mountsUnder(dir), []);
}

test('a --writeable mount killed (SIGKILL) at any instant is finished off by the next umount or mount', async (t) => {
  const { runDir, dir, stack } = setup(t, 'killed');
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  guardOciMount(stack, runDir, mp);
  // Measure one mount's duration, then kill at instants spread over it.
  const t0 = Date.now();
  await atomfsOk(['mount', '--writeable', '--metadir', runDir, image, mp]);
  const span = Date.now() - t0;
  await atomfsOk(['umount', '--metadir', runDir, mp]);
  for (let i = 1; i <= 10; i++) {
    const delay = Math.round((span * i) / 10);
    const env = { ...process.env };
    delete env.ATOMFS_TEST_RUN_DIR;
    const cli = spawn(process.execPath, [ATOMFS, 'mount', '--writeable', '--metadir', runDir, image, mp], { env, stdio: 'ignore' });
    const exited = new Promise((r) => cli.once('exit', r));
    await new Promise((r) => setTimeout(r, delay));
    cli.kill('SIGKILL');
    await exited;
    await assertRecoverable(runDir, dir, mp, `killed after ${delay} ms`);
  }
});

test('Ctrl-C (SIGINT) during a --writeable mount: it either completes or undoes everything, exiting non-zero with one line', async (t) => {
  const { runDir, dir, stack } = setup(t, 'sigint');
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  guardOciMount(stack, runDir, mp);
  // Fixed instants, and 16 spread over the last half of one measured mount: the server's start
  // and its mount(8) lie there (a Ctrl-C during mount(8) once left a mount nobody served).
  const t0 = Date.now();
  await atomfsOk(['mount', '--writeable', '--metadir', runDir, image, mp]);
  const span = Date.now() - t0;
  await atomfsOk(['umount', '--metadir', runDir, mp]);
  const sweep = Array.from({ length: 16 }, (_, i) => Math.round(span * (0.5 + (0.6 * i) / 15)));
  let interrupted = 0;
  for (const delay of [20, 60, 90, 120, 160, 250, ...sweep]) {
    const env = { ...process.env };
    delete env.ATOMFS_TEST_RUN_DIR;
    const cli = spawn(process.execPath, [ATOMFS, 'mount', '--writeable', '--metadir', runDir, image, mp], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    cli.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => cli.once('exit', (c) => r(c)));
    await new Promise((r) => setTimeout(r, delay));
    cli.kill('SIGINT');
    const code = await exited;
    if (code !== 0) {
      // code null: the signal came while Node itself was starting, before any atomfs code ran.
      interrupted++;
      if (code !== null) assert.match(err, /^Error: interrupted/, `one line saying so (${delay} ms)`);
      assert.deepEqual(mountsUnder(dir), [], `interrupted at ${delay} ms: nothing mounted (${err})`);
      assert.equal(existsSync(metadirOf(runDir, mp)), false, `interrupted at ${delay} ms: no metadir`);
    }
    await assertRecoverable(runDir, dir, mp, `SIGINT after ${delay} ms`);
  }
  assert.ok(interrupted > 0, 'at least one SIGINT came while mounting');
});

test('a server told to stop (SIGTERM) at any instant of its start leaves nothing mounted', async (t) => {
  const { runDir, dir, stack } = setup(t, 'server-stop');
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  guardOciMount(stack, runDir, mp);
  // The spec a mount hands its server, pointed at a mountpoint of its own.
  await atomfsOk(['mount', '--metadir', runDir, image, mp]);
  const spec = JSON.parse(readFileSync(join(metadirOf(runDir, mp), 'serve.json'), 'utf8')) as { mountpoint: string };
  await atomfsOk(['umount', '--metadir', runDir, mp]);
  const mp2 = join(dir, 'mp2');
  mkdirSync(mp2);
  stack.add(`umount ${mp2}`, () => runSync(['umount', '-l', mp2], { allowFail: true }));
  const specFile = join(dir, 'serve.json');
  writeFileSync(specFile, JSON.stringify({ ...spec, mountpoint: mp2 }));
  const serve = () => spawn(process.execPath, [ATOMFS, '__serve', specFile], { stdio: 'ignore' });
  // How long a server takes to mount; then SIGTERM at 40 instants from a third of that to past it
  // (one that died by the signal during its mount(8) used to leave a mount nobody served).
  const t0 = Date.now();
  const first = serve();
  for (let i = 0; i < 500 && !isMounted(mp2); i++) sleepSync(2);
  const span = Date.now() - t0;
  first.kill('SIGTERM');
  await new Promise((r) => first.once('exit', r));
  for (let i = 0; i < 40; i++) {
    const delay = Math.round(span * (0.3 + (0.8 * i) / 39));
    const server = serve();
    const exited = new Promise((r) => server.once('exit', r));
    await new Promise((r) => setTimeout(r, delay));
    server.kill('SIGTERM');
    await exited;
    // mount(8) is a child of the server: give one it left behind the time to finish.
    sleepSync(50);
    assert.deepEqual(mountsUnder(dir), [], `SIGTERM after ${delay} ms of a ${span} ms start: nothing mounted`);
  }
});

test('refused: a --metadir others can write, one owned by another user, and a config.json planted by another user', async (t) => {
  const { dir, stack } = setup(t, 'planted');
  const user = ensureTestUser(USER, stack);
  const victim = join(dir, 'tmpfs');
  mkdirSync(victim);
  await run(['mount', '-t', 'tmpfs', 'tmpfs', victim]);
  stack.add(`umount ${victim}`, () => runSync(['umount', '-l', victim], { allowFail: true }));
  writeFileSync(join(victim, 'data'), 'precious');
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  // 1. world-writable --metadir.
  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  let r = await atomfs(['mount', '--metadir', open, image, mp]);
  assert.match(assertOneLineError(r, 'world-writable metadir'), /writable by others/);
  // 2. a metadir inside a dir the user owns, with a planted record naming the tmpfs.
  const home = join(dir, 'home');
  mkdirSync(home);
  chownSync(home, user.uid, user.gid);
  r = await atomfs(['mount', '--metadir', join(home, 'run'), image, mp]);
  assert.match(assertOneLineError(r, 'metadir under a user-owned dir'), /owned by uid/);
  // 3. root's own run dir, but config.json planted (owned) by the user.
  const runDir = join(dir, 'run');
  const planted = join(runDir, 'meta', readMountNs(), metadirName(mp));
  mkdirSync(planted, { recursive: true });
  chmodSync(runDir, 0o755);
  const record = { OCIDir: '', Tag: '', Target: mp, atomfs: { backend: 'kernel', layers: [], mounts: [{ target: victim, kind: 'overlay' }] } };
  writeFileSync(join(planted, 'config.json'), JSON.stringify(record));
  chownSync(join(planted, 'config.json'), user.uid, user.gid);
  for (const args of [['umount', '--metadir', runDir, mp], ['mount', '--metadir', runDir, image, mp]]) {
    r = await atomfs(args);
    assert.match(assertOneLineError(r, args[0]!), /owned by uid/);
  }
  assert.ok(isMounted(victim), 'the tmpfs is still mounted');
  assert.equal(readFileSync(join(victim, 'data'), 'utf8'), 'precious');
  // Control: the same record owned by root is acted on (its target is outside the metadir and is
  // not the mount's target, so still not unmounted, but with an error saying so).
  chownSync(join(planted, 'config.json'), 0, 0);
  r = await atomfs(['umount', '--metadir', runDir, mp]);
  assert.match(assertOneLineError(r, 'root-owned record naming a foreign mount'), /refusing to unmount/);
  assert.ok(isMounted(victim), 'still mounted');
});

test('umount of a busy --writeable mount fails and changes nothing; once free, it unmounts all', async (t) => {
  const { runDir, dir, stack } = setup(t, 'busy');
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  guardOciMount(stack, runDir, mp);
  await atomfsOk(['mount', '--writeable', '--metadir', runDir, image, mp]);
  const before = mountsUnder(runDir).length + mountsUnder(mp).length;
  const holder = spawn('sleep', ['30'], { cwd: mp, stdio: 'ignore' });
  stack.add('kill holder', () => holder.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 200));
  const r = await atomfs(['umount', '--metadir', runDir, mp]);
  assert.match(assertOneLineError(r, 'busy umount'), /busy/);
  assert.equal(mountsUnder(runDir).length + mountsUnder(mp).length, before, 'every mount still there');
  assert.equal(readFileSync(join(mp, 'etc/hello'), 'utf8'), 'hello from the image\n', 'the lower is still served');
  writeFileSync(join(mp, 'still-writable'), 'y');
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('exit', r));
  const u = await atomfs(['umount', '--metadir', runDir, mp]);
  assert.equal(u.status, 0, describe(u));
  assert.deepEqual(mountsUnder(dir), []);
});

test('the metadir deleted under a live --writeable mount: umount still undoes it all and the target can be mounted again', async (t) => {
  const { runDir, dir, stack } = setup(t, 'deleted');
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  guardOciMount(stack, runDir, mp);
  await atomfsOk(['mount', '--writeable', '--metadir', runDir, image, mp]);
  const pid = readRecord(runDir, mp)?.serverPid;
  // rm -rf stops at the busy mountpoint inside; the record and upper dir go.
  runSync(['rm', '-rf', metadirOf(runDir, mp)], { allowFail: true });
  assert.equal(existsSync(join(metadirOf(runDir, mp), 'config.json')), false);
  const u = await atomfs(['umount', '--metadir', runDir, mp]);
  assert.equal(u.status, 0, describe(u));
  assert.deepEqual(mountsUnder(dir), []);
  assert.ok(pid !== undefined && (await waitGone(pid, 5000)), 'server gone');
  await assertRecoverable(runDir, dir, mp, 'after the metadir was deleted');
});

test('a record written under Go atomfs’s munged name (/ as -) is found by umount', async (t) => {
  const { runDir, dir, stack } = setup(t, 'go-name');
  const mp = join(dir, 'm-p');
  mkdirSync(mp);
  guardOciMount(stack, runDir, mp);
  await atomfsOk(['mount', '--metadir', runDir, image, mp]);
  const go = join(runDir, 'meta', readMountNs(), mp.slice(1).replace(/\//g, '-'));
  assert.notEqual(go, metadirOf(runDir, mp));
  renameSync(metadirOf(runDir, mp), go);
  const u = await atomfs(['umount', '--metadir', runDir, mp]);
  assert.equal(u.status, 0, describe(u));
  assert.deepEqual(mountsUnder(dir), []);
  assert.equal(existsSync(go), false);
});

test('--metadir= (empty) is a usage error, not the default', async () => {
  const r = await atomfs(['mount', '--metadir=', image, work]);
  assert.equal(r.status, 2, describe(r));
  assert.match(r.stderr.toString(), /--metadir needs a directory/);
});

test('a target whose name is not UTF-8 is refused by its exact bytes, not mounted at a lossily decoded path', async (t) => {
  const { runDir, dir } = setup(t, 'raw-name');
  const raw = Buffer.concat([Buffer.from(`${dir}/x`), Buffer.from([0xff, 0xfe])]);
  mkdirSync(raw);
  const r = await run(['sh', '-c', `exec "$0" "$1" mount --metadir "$2" "$3" "$(printf '${dir}/x\\377\\376')"`, process.execPath, ATOMFS, runDir, image], { allowFail: true });
  assert.match(assertOneLineError(r, 'non-UTF-8 target'), /x\\xff\\xfe": atomfs needs paths that are valid UTF-8/);
  assert.deepEqual(mountsUnder(dir), []);
});

test('a --metadir or --upper inside the target (the mount would hide it) is refused with one line, nothing mounted', async (t) => {
  const { dir } = setup(t, 'inside');
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  let r = await atomfs(['mount', '--metadir', join(mp, 'run'), image, mp]);
  assert.match(assertOneLineError(r, 'metadir inside'), /inside the target/);
  r = await atomfs(['mount', '--metadir', join(dir, 'run'), '--upper', join(mp, 'up'), image, mp]);
  assert.match(assertOneLineError(r, 'upper inside'), /--upper .* is inside the target/);
  assert.deepEqual(mountsUnder(dir), []);
});
