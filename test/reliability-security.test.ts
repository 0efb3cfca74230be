/**
 * Issue 7, security: what a hostile image must not achieve through an atomfs FUSE mount.
 * - setuid bits and device nodes: as host root an image mount honours them, as the kernel path
 *   (Go atomfs) does, unless --nosuid --nodev; in a user namespace, and for `sqfs mount`, a
 *   setuid/setgid program runs with the caller's ids and a device node cannot be opened
 *   (controls: the kernel's own loop mount of the same layer honours both);
 * - symlinks are served as symlinks and resolved by the client only: the server opens nothing
 *   but its layer blobs (its fd table is checked), a link to /etc/shadow is just that link;
 * - a manifest whose digest does not match, or a root hash that does not match its layer, is
 *   refused before anything is mounted;
 * - a mount writes nothing outside its metadir and the chosen --persist dir (the OCI layout,
 *   the target's parent and TMPDIR are unchanged, as root and as a user in a user namespace).
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { writeLayout } from '@atomfs/oci';
import { chmodDevFuse, ensureTestUser, makeTempDir, processCleanup, run, runAsUserInUserns, useCleanup, withLoopMount, type CleanupStack } from './lib/index.js';
import {
  appendVerity,
  assertOneLineError,
  atomfs,
  ATOMFS,
  describe,
  guardNoDebris,
  guardOciMount,
  guardSqfsMount,
  makeLayout,
  metadirOf,
  mksquashfs,
  mountsUnder,
  readRecord,
  runBounded,
  serversUnder,
  waitGone,
  type LayerFile,
} from './reliability-common.js';

const USER = 'atomfs-test-rels';

interface Fixture {
  work: string;
  layer: LayerFile;
  top: LayerFile;
}
let fx: Fixture;

before(async () => {
  const work = makeTempDir('rel-sec-fixture', processCleanup);
  chmodSync(work, 0o755);
  const src = join(work, 'src');
  for (const d of ['bin', 'dev', 'etc']) mkdirSync(join(src, d), { recursive: true });
  // id(1) with the setuid / setgid bit, owned by root: prints the ids it really runs with.
  copyFileSync('/usr/bin/id', join(src, 'bin/suid-id'));
  copyFileSync('/usr/bin/id', join(src, 'bin/sgid-id'));
  chownSync(join(src, 'bin/suid-id'), 0, 0);
  chownSync(join(src, 'bin/sgid-id'), 0, 0);
  chmodSync(join(src, 'bin/suid-id'), 0o4755);
  chmodSync(join(src, 'bin/sgid-id'), 0o2755);
  await run(['mknod', '-m', '0666', join(src, 'dev/zero'), 'c', '1', '5']);
  await run(['mknod', '-m', '0666', join(src, 'dev/loop0'), 'b', '7', '0']);
  // Links that point out of the image, and one whose absolute target exists only IN the image.
  symlinkSync('/etc/shadow', join(src, 'etc/shadow-link'));
  symlinkSync('../../../../../../../../etc/hostname', join(src, 'etc/escape'));
  symlinkSync('/only-in-image.txt', join(src, 'abs-to-inside'));
  writeFileSync(join(src, 'only-in-image.txt'), 'image file\n');
  chmodSync(src, 0o755);
  const layer = join(work, 'layer.sqfs');
  await mksquashfs(src, layer, ['-comp', 'gzip']);
  const topSrc = join(work, 'top');
  mkdirSync(join(topSrc, 'etc'), { recursive: true });
  writeFileSync(join(topSrc, 'etc/motd'), 'top\n');
  const top = join(work, 'top.sqfs');
  await mksquashfs(topSrc, top, ['-comp', 'zstd']);
  fx = { work, layer: { file: layer, rootHash: await appendVerity(layer) }, top: { file: top, rootHash: await appendVerity(top) } };
});

function mountOptions(mountinfo: string, mp: string): { vfs: string[]; fstype: string } {
  const line = mountinfo.split('\n').find((l) => l.split(' ')[4] === mp);
  assert.ok(line, `${mp} in mountinfo`);
  const f = line.split(' ');
  return { vfs: f[5]!.split(','), fstype: f[f.indexOf('-') + 1]! };
}

async function idAs(user: string, prog: string, flag: string): Promise<string> {
  const r = await run(['runuser', '-u', user, '--', prog, flag], { allowFail: true, timeoutMs: 20_000 });
  assert.equal(r.status, 0, `${prog} ${flag} as ${user}: ${describe(r)}`);
  return r.stdout.toString().trim();
}

test('setuid and device nodes: as host root an image mount honours them as the kernel path does (any uid may use it), --nosuid --nodev and every user-namespace or sqfs mount refuse them', async (t) => {
  const stack = useCleanup(t);
  const user = ensureTestUser(USER, stack);
  chmodDevFuse(); // the user-namespace part needs it, as on most distributions
  const dir = makeTempDir('rel-sec-suid', stack);
  chmodSync(dir, 0o755);
  guardNoDebris(stack, dir);
  await makeLayout(join(dir, 'oci'), 'img', [fx.layer, fx.top]);
  const mp = join(dir, 'mp');
  const mp2 = join(dir, 'mp2');
  mkdirSync(mp);
  mkdirSync(mp2);
  const runDir = join(dir, 'run');

  // atomfs mount (FUSE + verity) as host root: like the kernel path (Go atomfs), suid and dev,
  // and allow_other, so USER runs the image's setuid-root program as root.
  guardOciMount(stack, runDir, mp);
  const m = await atomfs(['mount', '--backend', 'fuse', '--metadir', runDir, `${join(dir, 'oci')}:img`, mp]);
  assert.equal(m.status, 0, describe(m));
  const o = mountOptions(readFileSync('/proc/self/mountinfo', 'utf8'), mp);
  assert.equal(o.fstype, 'fuse.atomfs');
  assert.ok(!o.vfs.includes('nosuid') && !o.vfs.includes('nodev') && o.vfs.includes('ro'), `ro, suid, dev: ${o.vfs.join(',')}`);
  assert.equal(lstatSync(join(mp, 'bin/suid-id')).mode & 0o7777, 0o4755, 'the setuid bit is shown as stored');
  assert.equal(await idAs(USER, join(mp, 'bin/suid-id'), '-u'), '0', 'setuid root honoured, as on the kernel path');
  assert.equal(await idAs(USER, join(mp, 'bin/sgid-id'), '-g'), '0', 'setgid root honoured');
  const zero = await runBounded(['head', '-c', '1', join(mp, 'dev/zero')]);
  assert.equal(zero.status, 0, `the image's device node opens: ${describe(zero)}`);
  const um = await atomfs(['umount', '--metadir', runDir, mp]);
  assert.equal(um.status, 0, describe(um));

  // --nosuid --nodev: for inspecting an image one does not trust.
  const n = await atomfs(['mount', '--backend', 'fuse', '--nosuid', '--nodev', '--metadir', runDir, `${join(dir, 'oci')}:img`, mp]);
  assert.equal(n.status, 0, describe(n));
  const on = mountOptions(readFileSync('/proc/self/mountinfo', 'utf8'), mp);
  assert.ok(on.vfs.includes('nosuid') && on.vfs.includes('nodev'), `--nosuid --nodev: ${on.vfs.join(',')}`);
  assert.equal(await idAs(USER, join(mp, 'bin/suid-id'), '-u'), String(user.uid), '--nosuid: setuid root ignored');
  for (const dev of ['dev/zero', 'dev/loop0']) {
    const r = await runBounded(['head', '-c', '1', join(mp, dev)]);
    assert.notEqual(r.status, 0, `${dev} must not open: ${describe(r)}`);
    assert.match(r.stderr.toString(), /Permission denied/, `${dev}: EACCES from nodev`);
  }

  // atomfs sqfs mount --allow-other of the same layer, so another user can run its programs.
  guardSqfsMount(stack, mp2);
  const s = await atomfs(['sqfs', 'mount', '--allow-other', fx.layer.file, mp2]);
  assert.equal(s.status, 0, describe(s));
  const o2 = mountOptions(readFileSync('/proc/self/mountinfo', 'utf8'), mp2);
  assert.ok(o2.vfs.includes('nosuid') && o2.vfs.includes('nodev'), `sqfs mount nosuid,nodev: ${o2.vfs.join(',')}`);
  assert.equal(await idAs(USER, join(mp2, 'bin/suid-id'), '-u'), String(user.uid), 'setuid root ignored');
  assert.equal(await idAs(USER, join(mp2, 'bin/sgid-id'), '-g'), String(user.gid), 'setgid root ignored');

  // Control: the kernel's mount of the same layer (suid, dev) does run it setuid, does open it.
  await withLoopMount(fx.layer.file, async (k) => {
    assert.equal(await idAs(USER, join(k, 'bin/suid-id'), '-u'), '0', 'control: the image carries a working setuid-root program');
    assert.equal(await idAs(USER, join(k, 'bin/sgid-id'), '-g'), '0', 'control: and a setgid-root one');
    const r = await runBounded(['head', '-c', '1', join(k, 'dev/zero')]);
    assert.equal(r.status, 0, `control: the device node is real: ${describe(r)}`);
  });

  // The same for a user mounting in a user namespace.
  const home = join(dir, 'user');
  mkdirSync(join(home, 'mp'), { recursive: true });
  chownSync(home, user.uid, user.gid);
  chownSync(join(home, 'mp'), user.uid, user.gid);
  const script = [
    `${process.execPath} ${ATOMFS} mount --metadir ${home}/run ${dir}/oci:img ${home}/mp || exit 9`,
    `grep " ${home}/mp " /proc/self/mountinfo`,
    `head -c 1 ${home}/mp/dev/zero >/dev/null 2>&1; echo "zero rc=$?"`,
    `${home}/mp/bin/suid-id -u; ${home}/mp/bin/suid-id -u -r`,
    `${process.execPath} ${ATOMFS} umount --metadir ${home}/run ${home}/mp; echo "umount rc=$?"`,
  ].join('\n');
  const u = await runAsUserInUserns(USER, ['sh', '-c', script], { timeoutMs: 120_000, env: { ...process.env, TMPDIR: home, HOME: home } });
  assert.equal(u.status, 0, describe(u));
  const out = u.stdout.toString().split('\n');
  const opts = out[0]!.split(' ')[5]!.split(',');
  assert.ok(opts.includes('nosuid') && opts.includes('nodev'), `userns mount: ${out[0]}`);
  assert.equal(out[1], 'zero rc=1', 'device node refused in the user namespace too');
  assert.equal(out[2], out[3], 'effective uid = real uid: no setuid');
  assert.equal(out[4], 'umount rc=0');
});

test('symlinks are served, never followed by the server; the server opens nothing but its layers', async (t) => {
  const stack = useCleanup(t);
  const dir = makeTempDir('rel-sec-links', stack);
  guardNoDebris(stack, dir);
  const blobs = await makeLayout(join(dir, 'oci'), 'img', [fx.layer, fx.top]);
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  const runDir = join(dir, 'run');
  guardOciMount(stack, runDir, mp);
  const m = await atomfs(['mount', '--backend', 'fuse', '--metadir', runDir, `${join(dir, 'oci')}:img`, mp]);
  assert.equal(m.status, 0, describe(m));
  const pid = readRecord(runDir, mp)!.serverPid!;

  assert.ok(lstatSync(join(mp, 'etc/shadow-link')).isSymbolicLink());
  assert.equal(readlinkSync(join(mp, 'etc/shadow-link')), '/etc/shadow', 'the link as stored');
  assert.equal(readlinkSync(join(mp, 'etc/escape')), '../../../../../../../../etc/hostname');
  // Following happens in the client: /etc/shadow is the host's file (same device and inode) ...
  const viaLink = statSync(join(mp, 'etc/shadow-link'));
  const host = statSync('/etc/shadow');
  assert.equal(`${viaLink.dev}:${viaLink.ino}`, `${host.dev}:${host.ino}`, 'resolved on the host, by the kernel');
  // ... and an absolute link to a file that only the image has does not reach it.
  assert.equal(readFileSync(join(mp, 'only-in-image.txt'), 'utf8'), 'image file\n');
  const r = await runBounded(['cat', join(mp, 'abs-to-inside')]);
  assert.match(r.stderr.toString(), /No such file or directory/, `the server did not resolve it inside the image: ${describe(r)}`);
  // ".." at the mount's root stays the kernel's business: the escape link lands on the host.
  assert.equal(readFileSync(join(mp, 'etc/escape'), 'utf8'), readFileSync('/etc/hostname', 'utf8'));

  // Whatever was looked up above, the server holds only: its layers, /dev/fuse, its log, pipes.
  const allowed = new Set([...blobs.map((b) => statSync(b)).map((s) => `${s.dev}:${s.ino}`)]);
  const fds = readdirSync(`/proc/${pid}/fd`).map((fd) => {
    const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    return { fd, target };
  });
  const odd = fds.filter(({ fd, target }) => {
    if (/^(pipe|socket|anon_inode):/.test(target) || target === '/dev/fuse' || target === '/dev/null') return false;
    if (target.startsWith(metadirOf(runDir, mp))) return false;
    try {
      const st = statSync(`/proc/${pid}/fd/${fd}`);
      return !allowed.has(`${st.dev}:${st.ino}`);
    } catch {
      return true;
    }
  });
  assert.deepEqual(odd, [], 'no open file beyond the layers, the device, the log and pipes');
  assert.ok(fds.some((f) => f.target === '/dev/fuse'));
  assert.equal((await atomfs(['umount', '--metadir', runDir, mp])).status, 0);
  assert.ok(await waitGone(pid, 10_000));
});

test('a manifest whose digest does not match, or a root hash that does not match its layer, is refused before anything is mounted', async (t) => {
  const stack = useCleanup(t);
  const dir = makeTempDir('rel-sec-refuse', stack);
  guardNoDebris(stack, dir);
  const mp = join(dir, 'mp');
  mkdirSync(mp);
  const runDir = join(dir, 'run');
  guardOciMount(stack, runDir, mp);

  // The manifest blob changed after index.json recorded its digest: same size, still valid JSON
  // (one hex digit of the layer's root hash annotation), so only the digest can tell.
  const w = await writeLayout(join(dir, 'oci'), { tag: 'img', layers: [{ file: fx.layer.file, rootHash: fx.layer.rootHash! }] });
  const manifest = readFileSync(w.manifestPath, 'utf8');
  const digit = fx.layer.rootHash!.at(-1) === '0' ? '1' : '0';
  const tampered = manifest.replace(fx.layer.rootHash!, fx.layer.rootHash!.slice(0, -1) + digit);
  assert.notEqual(tampered, manifest);
  assert.equal(tampered.length, manifest.length);
  writeFileSync(w.manifestPath, tampered);
  // A root hash that belongs to another layer.
  await writeLayout(join(dir, 'oci'), { tag: 'wrong-root', layers: [{ file: fx.layer.file, rootHash: fx.top.rootHash! }] });
  for (const [tag, expect] of [
    ['img', /digest/i],
    ['wrong-root', /root hash|verity|hash/i],
  ] as const) {
    for (const backend of ['fuse', 'auto']) {
      const r = await atomfs(['mount', '--backend', backend, '--metadir', runDir, `${join(dir, 'oci')}:${tag}`, mp]);
      const line = assertOneLineError(r, `${tag} (${backend})`);
      assert.match(line, expect, `${tag}: says why: ${line}`);
      if (backend === 'fuse') t.diagnostic(`${tag}: ${line}`);
      assert.deepEqual(mountsUnder(dir), [], `${tag}: nothing mounted`);
      assert.deepEqual(serversUnder(dir), [], `${tag}: no server`);
      assert.equal(existsSync(metadirOf(runDir, mp)), false, `${tag}: no metadir`);
    }
  }
});

// ---- nothing written outside the metadir and the persist dir ----------------------------------

/** path → type, mode, size, mtime, ctime of everything under `root` (atime left out: reads change it). */
function snapshotTree(root: string, skip: readonly string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (p: string): void => {
    if (skip.includes(p)) return;
    const st = lstatSync(p, { bigint: true });
    out.set(p, `${st.mode.toString(8)} ${st.size} ${st.mtimeNs} ${st.ctimeNs} ${st.uid}:${st.gid}`);
    if (st.isDirectory()) for (const n of readdirSync(p)) visit(join(p, n));
  };
  visit(root);
  return out;
}

function diffSnapshots(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) out.push(`${k}: ${v} -> ${b.get(k) ?? 'gone'}`);
  for (const k of b.keys()) if (!a.has(k)) out.push(`${k}: new`);
  return out;
}

async function noWritesOutside(stack: CleanupStack, asUser: boolean): Promise<void> {
  const user = asUser ? ensureTestUser(USER, stack) : undefined;
  if (asUser) chmodDevFuse();
  const dir = makeTempDir(asUser ? 'rel-sec-writes-user' : 'rel-sec-writes', stack);
  chmodSync(dir, 0o755);
  guardNoDebris(stack, dir);
  await makeLayout(join(dir, 'oci'), 'img', [fx.layer, fx.top]);
  const parent = join(dir, 'parent');
  const mp = join(parent, 'mp');
  const tmp = join(dir, 'tmp');
  const persist = join(dir, 'persist');
  const runDir = join(dir, 'run');
  for (const d of [mp, tmp, persist, runDir]) mkdirSync(d, { recursive: true });
  if (user) for (const d of [parent, mp, tmp, persist, runDir]) chownSync(d, user.uid, user.gid);
  // TMPDIR itself may change (atomfs sqfs mount keeps its log in a temp dir there, removed when
  // the server ends cleanly): what must hold is that nothing stays in it.
  const watched = [join(dir, 'oci'), parent];
  const before = watched.map((d) => snapshotTree(d));

  const cli = `${process.execPath} ${ATOMFS}`;
  const script = [
    `${cli} mount --persist ${persist} --metadir ${runDir} ${dir}/oci:img ${mp} || exit 9`,
    `echo written > ${mp}/new-file && cat ${mp}/etc/motd >/dev/null || exit 8`,
    `test -d ${runDir}/meta || exit 7`,
    `${cli} umount --metadir ${runDir} ${mp} || exit 6`,
    `${cli} sqfs mount ${fx.layer.file} ${mp} || exit 5`,
    `cat ${mp}/only-in-image.txt >/dev/null || exit 4`,
    `${cli} sqfs umount ${mp} || exit 3`,
  ].join('\n');
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp };
  delete env.ATOMFS_TEST_RUN_DIR;
  if (!asUser) {
    guardOciMount(stack, runDir, mp);
    guardSqfsMount(stack, mp);
  }
  const r = user ? await runAsUserInUserns(USER, ['sh', '-c', script], { timeoutMs: 120_000, env: { ...env, HOME: tmp } }) : await run(['sh', '-c', script], { allowFail: true, timeoutMs: 120_000, env });
  assert.equal(r.status, 0, `mount, write, umount: ${describe(r)}`);
  // The sqfs server removes its default log when it ends cleanly: give it the moment it needs.
  for (let i = 0; i < 100 && (serversUnder(dir).length > 0 || readdirSync(tmp).length > 0); i++) await new Promise((res) => setTimeout(res, 50));
  const after = watched.map((d) => snapshotTree(d));
  watched.forEach((d, i) => assert.deepEqual(diffSnapshots(before[i]!, after[i]!), [], `${d} unchanged`));
  assert.deepEqual(readdirSync(tmp), [], 'nothing left in TMPDIR');
  assert.equal(readFileSync(join(persist, 'persist', 'new-file'), 'utf8'), 'written\n', 'the write landed in the persist dir');
  // Only meta/<ns>/ (empty, the Go contract) stays in the metadir.
  const meta = join(runDir, 'meta');
  const left = existsSync(meta) ? readdirSync(meta).flatMap((ns) => readdirSync(join(meta, ns)).map((d) => `${ns}/${d}`)) : [];
  assert.deepEqual(left, [], 'no mount metadata left');
  assert.deepEqual(serversUnder(dir), []);
  assert.deepEqual(mountsUnder(dir), []);
}

test('as host root, a mount writes nothing outside its metadir and --persist dir (OCI layout and target parent unchanged, TMPDIR empty)', async (t) => {
  await noWritesOutside(useCleanup(t), false);
});

test('as a user in a user namespace, a mount writes nothing outside its metadir and --persist dir', async (t) => {
  await noWritesOutside(useCleanup(t), true);
});
