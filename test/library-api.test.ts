/**
 * Issue 13: the library API a Node container runtime calls (mount, umount, listMounts from
 * @atomfs/atomfs), run as such a runtime would: its own program, not bin/atomfs; and the warning
 * for a mount made in a mount namespace that no other process shares.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, test } from 'node:test';
import { isMounted, makeTempDir, processCleanup, run, useCleanup } from './lib/index.js';
import { alive, appendVerity, ATOMFS, atomfs, describe, guardNoDebris, guardOciMount, makeLayout, mksquashfs, mountsUnder, serversUnder, waitGone } from './reliability-common.js';

let work: string;
let image: string;
const CONTENT = 'served through the library API\n';

before(async () => {
  work = makeTempDir('library-api', processCleanup);
  chmodSync(work, 0o755);
  const src = join(work, 'src');
  mkdirSync(join(src, 'etc'), { recursive: true });
  writeFileSync(join(src, 'etc/motd'), CONTENT);
  const layer = join(work, 'layer.sqfs');
  await mksquashfs(src, layer, ['-comp', 'zstd']);
  await makeLayout(join(work, 'oci'), 'img', [{ file: layer, rootHash: await appendVerity(layer) }]);
  image = `${join(work, 'oci')}:img`;
});

/** The README's library example, as a runtime's own program (an .mjs next to the tests). */
const RUNTIME = `
import { readFile } from 'node:fs/promises';
import { mount, umount, listMounts } from '@atomfs/atomfs';
const [image, target, metadir] = process.argv.slice(2);
const m = await mount({ image, target, metadir });
const motd = await readFile(target + '/etc/motd', 'utf8');
const listed = listMounts({ metadir }).map((l) => ({ target: l.target, live: l.live }));
console.log(JSON.stringify({ mounted: m, motd, listed }));
if (process.env.UMOUNT === '1') await umount(target, { metadir });
`;

test('a Node program mounts with the library API (its server is atomfs, not the program), reads, lists, unmounts', async (t) => {
  const stack = useCleanup(t);
  const dir = join(work, 'api');
  mkdirSync(dir);
  guardNoDebris(stack, dir);
  const runDir = join(dir, 'run');
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  guardOciMount(stack, runDir, mp);
  // In the tests' package, so that '@atomfs/atomfs' resolves as in a runtime that depends on it.
  const script = fileURLToPath(new URL('./library-runtime.mjs', import.meta.url));
  writeFileSync(script, RUNTIME);
  const r = await run([process.execPath, script, image, mp, runDir], { allowFail: true, timeoutMs: 60_000 });
  assert.equal(r.status, 0, describe(r));
  const out = JSON.parse(r.stdout.toString()) as { mounted: { target: string; backend: string; serverPid: number; live: boolean }; motd: string; listed: { target: string; live: boolean }[] };
  assert.equal(out.motd, CONTENT);
  assert.equal(out.mounted.target, mp);
  assert.equal(out.mounted.backend, 'fuse');
  assert.equal(out.mounted.live, true);
  assert.deepEqual(out.listed, [{ target: mp, live: true }]);
  // The program has exited; its mount lives on, served by an atomfs server.
  assert.ok(isMounted(mp));
  const pid = out.mounted.serverPid;
  assert.ok(alive(pid), 'server outlives the program');
  const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  assert.ok(cmd.includes('__serve') && !cmd.includes(script), `server runs atomfs's entry: ${cmd.join(' ')}`);
  assert.equal(readFileSync(join(mp, 'etc/motd'), 'utf8'), CONTENT);
  const l = await atomfs(['list', '--json', '--metadir', runDir]);
  assert.equal(l.status, 0, describe(l));
  assert.equal((JSON.parse(l.stdout.toString().trim()) as { target: string }).target, mp, 'the CLI lists it');
  // umount through the API, from another run of the program's kind.
  const u = await run([process.execPath, '--input-type=module', '-e', `import { umount } from '@atomfs/atomfs'; await umount(${JSON.stringify(mp)}, { metadir: ${JSON.stringify(runDir)} });`], {
    allowFail: true,
    cwd: fileURLToPath(new URL('.', import.meta.url)),
  });
  assert.equal(u.status, 0, describe(u));
  assert.ok(await waitGone(pid, 5000));
  assert.deepEqual(mountsUnder(dir), []);
  const l2 = await atomfs(['list', '--metadir', runDir]);
  assert.equal(l2.stdout.toString(), '', 'nothing listed after umount');
});

test('a mount made in a mount namespace nobody else shares warns on stderr, naming its server; one made from a shell inside does not', async (t) => {
  const stack = useCleanup(t);
  const dir = join(work, 'lonely');
  mkdirSync(dir);
  guardNoDebris(stack, dir);
  const runDir = join(dir, 'run');
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  const env = { ...process.env };
  delete env.ATOMFS_TEST_RUN_DIR;
  const alone = await run(['unshare', '-m', '--propagation', 'private', '--', process.execPath, ATOMFS, 'mount', '--metadir', runDir, image, mp], { allowFail: true, env, timeoutMs: 60_000 });
  assert.equal(alone.status, 0, describe(alone));
  const m = /warning: no other process shares this mount namespace: .*server, pid (\d+)/.exec(alone.stderr.toString());
  assert.ok(m, `warned: ${describe(alone)}`);
  const pid = Number(m[1]);
  stack.add('kill the lonely server', () => {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  assert.equal(isMounted(mp), false, 'indeed not visible here');
  assert.ok(serversUnder(runDir).includes(pid), 'its server holds it');
  process.kill(pid, 'SIGKILL');
  assert.ok(await waitGone(pid, 5000));

  const script = `${process.execPath} ${ATOMFS} mount --metadir ${runDir} ${image} ${mp} && cat ${mp}/etc/motd && ${process.execPath} ${ATOMFS} umount --metadir ${runDir} ${mp}`;
  const shell = await run(['unshare', '-m', '--propagation', 'private', '--', 'sh', '-c', script], { allowFail: true, env, timeoutMs: 60_000 });
  assert.equal(shell.status, 0, describe(shell));
  assert.equal(shell.stdout.toString(), CONTENT);
  assert.doesNotMatch(shell.stderr.toString(), /warning/);
});

test('the README’s library example runs as written (saved at the top of the checkout) and leaves nothing mounted', async (t) => {
  const stack = useCleanup(t);
  const repo = fileURLToPath(new URL('../../', import.meta.url));
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const block = /### Library[\s\S]*?```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'the README has a js example under "### Library"');
  const file = join(repo, `example-${process.pid}.mjs`);
  writeFileSync(file, block[1]!);
  stack.add(`rm ${file}`, () => rmSync(file, { force: true }));
  stack.add('rm /tmp/changes /tmp/rootfs', () => {
    if (!isMounted('/tmp/rootfs')) rmSync('/tmp/rootfs', { recursive: true, force: true });
    rmSync('/tmp/changes', { recursive: true, force: true });
  });
  guardOciMount(stack, '/run/atomfs', '/tmp/rootfs');
  const r = await run([process.execPath, file], { allowFail: true, cwd: repo, timeoutMs: 60_000 });
  assert.equal(r.status, 0, describe(r));
  assert.match(r.stdout.toString(), /^(fuse|kernel) \[.*'etc'.*\] \[ '\/tmp\/rootfs true' \]/);
  assert.equal(isMounted('/tmp/rootfs'), false);
});
