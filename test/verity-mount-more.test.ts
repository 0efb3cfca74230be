/**
 * Verity mounts, continued: a wrong root hash annotation is refused; a flipped data block read by
 * a non-root user in a user namespace gives EIO, never wrong bytes; the kernel dm-verity path where
 * the machine has device-mapper (else test/vm/run.sh runs it); --debug says which path it took.
 * The image and helpers: verity-mount-fixture.ts.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeLayout } from '@atomfs/oci';
import { chmodDevFuse, compareSnapshots, ensureTestUser, isMounted, makeTempDir, Prng, readMountinfo, run, runAsUserInUserns, snapshotDir, useCleanup, type EntrySnap } from './lib/index.js';
import {
  ATOMFS,
  TAG,
  SEED,
  USER,
  PREFIX,
  PROBE_SCRIPT,
  probeItems,
  ociDir,
  layers,
  truth,
  atomfs,
  text,
  ourServers,
  killPids,
  copyLayout,
  flipBit,
  exited,
  registerMountCleanup,
  oneLineError,
  makeCases,
  setupVerityFixture,
  teardownVerityFixture,
} from './verity-mount-fixture.js';

before(() => setupVerityFixture('vr'));
after(() => teardownVerityFixture());

test('a wrong root hash annotation: mount refused naming the layer, verify fails', async (t) => {
  const stack = useCleanup(t);
  const dir = makeTempDir(`${PREFIX}-root`, stack);
  const base = layers[0]!;
  const top = layers[1]!;
  const wrong = base.rootHash.slice(0, 10) + (base.rootHash[10] === '0' ? '1' : '0') + base.rootHash.slice(11);
  const oci = join(dir, 'oci');
  await writeLayout(oci, { tag: TAG, layers: [{ file: base.blob, rootHash: wrong }, { file: top.blob, rootHash: top.rootHash }] });
  const mp = join(dir, 'mp');
  const runDir = join(dir, 'run');
  mkdirSync(mp);
  registerMountCleanup(stack, mp, runDir, dir);
  const m = await atomfs(['mount', '--metadir', runDir, `${oci}:${TAG}`, mp]);
  const err = oneLineError(m);
  assert.ok(err.includes(base.digest) && /root hash/.test(err), err);
  assert.ok(!isMounted(mp));
  assert.ok(!existsSync(runDir) || readdirSync(join(runDir, 'meta')).every((ns) => readdirSync(join(runDir, 'meta', ns)).length === 0), 'no metadata left');
  const vs = await run(['veritysetup', 'verify', base.blob, base.blob, wrong, `--hash-offset=${base.H}`], { allowFail: true });
  assert.notEqual(vs.status, 0, 'veritysetup rejects the wrong root hash too');
  const v = await atomfs(['verify', `${oci}:${TAG}`]);
  assert.equal(v.status, 1);
  assert.match(text(v.stdout), new RegExp(`^${base.digest}: CORRUPTION FOUND`, 'm'));
  assert.match(text(v.stdout), new RegExp(`^${top.digest}: OK`, 'm'));
});

test('a flipped data block as a non-root user in a user namespace: EIO, never wrong bytes', async (t) => {
  const stack = useCleanup(t);
  const user = ensureTestUser(USER, stack);
  chmodDevFuse(); // left 0666, as test/run.sh sets it for every unprivileged test
  const l = layers[0]!;
  const dir = makeTempDir(`${PREFIX}-userns`, stack);
  stack.add(`kill servers of ${dir}`, () => killPids(ourServers(dir)));
  chmodSync(dir, 0o755);
  const oci = copyLayout(dir, l.blob);
  const blob = join(oci, 'blobs', 'sha256', l.digest.slice('sha256:'.length));
  // A data block of a world-readable file, so the user can read it through the mount.
  const victim = [...truth.values()].find((e) => e.type === 'file' && e.path.startsWith('/files/r') && e.size > 500_000 && (e.mode & 0o004) !== 0);
  assert.ok(victim, 'a world-readable file of the base layer');
  const rng = new Prng(SEED ^ 0xabc);
  const cases = makeCases().filter((c) => c.layer === 0 && c.region === 'data');
  const c = cases[rng.below(cases.length)]!;
  flipBit(blob, c.offset, c.bit);
  const out = join(dir, 'out');
  const mp = join(dir, 'mp');
  const runDir = join(dir, 'run');
  for (const d of [out, mp, runDir]) {
    mkdirSync(d);
    chownSync(d, user.uid, user.gid);
  }
  // Only what a non-owner may read: world-readable files in world-searchable directories.
  const readable = new Map<string, EntrySnap>();
  for (const [k, e] of truth) {
    const dirs = k.split('/').slice(1, -1).map((_, i, parts) => '/' + parts.slice(0, i + 1).join('/'));
    const reachable = dirs.every((d) => ((truth.get(d)?.mode ?? 0) & 0o005) === 0o005) && ((truth.get('/')!.mode & 0o005) === 0o005);
    if (reachable && e.type === 'file' && (e.mode & 0o004) !== 0) readable.set(k, e);
  }
  writeFileSync(join(out, 'probe.cjs'), PROBE_SCRIPT);
  writeFileSync(join(out, 'items.json'), JSON.stringify({ root: mp, items: probeItems(readable), owners: false }));
  const script = `set -u
A="$1"; REF="$2"; MP="$3"; RUN="$4"; OUT="$5"
"$A" mount --metadir "$RUN" "$REF" "$MP" >"$OUT/mount.out" 2>"$OUT/mount.err"; echo $? >"$OUT/mount.rc"
[ "$(cat "$OUT/mount.rc")" = 0 ] || exit 0
grep -F " $MP " /proc/self/mountinfo >"$OUT/mountinfo"
"${process.execPath}" "$OUT/probe.cjs" <"$OUT/items.json" >"$OUT/probe.json" 2>"$OUT/probe.err"; echo $? >"$OUT/probe.rc"
"$A" verify --metadir "$RUN" "$MP" >"$OUT/verify.out" 2>&1; echo $? >"$OUT/verify.rc"
"$A" umount --metadir "$RUN" "$MP" >"$OUT/umount.out" 2>&1; echo $? >"$OUT/umount.rc"
`;
  const r = await runAsUserInUserns(user.name, ['bash', '-c', script, 'bash', ATOMFS, `${oci}:${TAG}`, mp, runDir, out], { timeoutMs: 120_000 });
  const read = (f: string): string => (existsSync(join(out, f)) ? readFileSync(join(out, f), 'utf8').trim() : `(no ${f})`);
  assert.equal(r.status, 0, text(r.stderr));
  assert.equal(read('mount.rc'), '0', `mount as ${user.name} in a user namespace: ${read('mount.err')}`);
  assert.match(read('mountinfo'), /fuse\.atomfs/, 'a FUSE mount (not host root)');
  assert.equal(read('probe.rc'), '0', read('probe.err'));
  const verdicts = JSON.parse(read('probe.json')) as string[];
  const keys = [...readable.keys()];
  const bad = verdicts.map((v, i) => [keys[i], v]).filter(([, v]) => v !== 'ok' && v !== 'eio');
  assert.deepEqual(bad, [], 'EIO or exactly the original bytes');
  assert.ok(verdicts.includes('eio'), 'the damaged block fails');
  assert.ok(verdicts.filter((v) => v === 'ok').length > 100, 'the rest reads');
  assert.equal(read('verify.rc'), '1');
  assert.match(read('verify.out'), new RegExp(`^${l.digest}: CORRUPTION FOUND`, 'm'));
  assert.equal(read('umount.rc'), '0', read('umount.out'));
  for (const pid of ourServers(dir)) assert.ok(await exited(pid), 'the server exited with the unmount');
});

test('kernel dm-verity: detection matches the machine', async () => {
  const host = (await import(new URL('../../packages/atomfs/dist/src/host.js', import.meta.url).href)) as {
    kernelDmVerityAvailable(): { ok: boolean; why: string };
  };
  const dm = host.kernelDmVerityAvailable();
  const control = existsSync('/dev/mapper/control');
  const misc = /device-mapper/.test(readFileSync('/proc/misc', 'utf8'));
  if (!control || !misc) {
    assert.equal(dm.ok, false);
    assert.match(dm.why, /device-mapper/);
  } else {
    assert.equal(dm.ok, existsSync('/sys/module/dm_verity'), `dm_verity module loaded: ${dm.why}`);
  }
});

test('kernel dm-verity: live mount through /dev/mapper', async (t) => {
  const host = (await import(new URL('../../packages/atomfs/dist/src/host.js', import.meta.url).href)) as {
    kernelDmVerityAvailable(): { ok: boolean; why: string };
  };
  const dm = host.kernelDmVerityAvailable();
  if (!dm.ok) {
    t.skip(`kernel dm-verity unavailable on this machine: ${dm.why}; the FUSE server verifies in userspace instead`);
    return;
  }
  // Device-mapper present: the host-root mount must use it and show the same image.
  const stack = useCleanup(t);
  const dir = makeTempDir(`${PREFIX}-dm`, stack);
  const mp = join(dir, 'mp');
  const runDir = join(dir, 'run');
  mkdirSync(mp);
  registerMountCleanup(stack, mp, runDir, dir);
  const m = await atomfs(['mount', '--metadir', runDir, `${ociDir}:${TAG}`, mp]);
  assert.equal(m.status, 0, text(m.stderr));
  const sources = readMountinfo().map((x) => x.source);
  for (const l of layers) assert.ok(sources.some((s) => s.includes(`${l.digest.slice(7)}-verity`)), `layer ${l.digest} is mounted from its dm-verity device`);
  assert.deepEqual(compareSnapshots(truth, await snapshotDir(mp), { ignore: ['dirNlink'] }), []);
  const u = await atomfs(['umount', '--metadir', runDir, mp]);
  assert.equal(u.status, 0, text(u.stderr));
});

test('--debug mount as host root without device-mapper says it falls back to the FUSE server', async (t) => {
  const host = (await import(new URL('../../packages/atomfs/dist/src/host.js', import.meta.url).href)) as {
    kernelDmVerityAvailable(): { ok: boolean; why: string };
    isHostRoot(): boolean;
  };
  assert.ok(host.isHostRoot(), 'the suite runs as host root');
  const dm = host.kernelDmVerityAvailable();
  if (dm.ok) {
    t.skip('device-mapper is available here: no fallback to test');
    return;
  }
  const stack = useCleanup(t);
  const dir = makeTempDir(`${PREFIX}-debug`, stack);
  const mp = join(dir, 'mp');
  const runDir = join(dir, 'run');
  mkdirSync(mp);
  registerMountCleanup(stack, mp, runDir, dir);
  const m = await atomfs(['--debug', 'mount', '--metadir', runDir, `${ociDir}:${TAG}`, mp]);
  assert.equal(m.status, 0, text(m.stderr));
  const err = text(m.stderr);
  assert.match(err, /FUSE server/, err);
  assert.ok(err.includes(dm.why), `the reason is given: ${err}`);
  assert.match(err, /backend fuse/, err);
  assert.equal(readMountinfo().find((x) => x.mountpoint === mp)?.fstype, 'fuse.atomfs', 'served by our FUSE server');
  const u = await atomfs(['umount', '--metadir', runDir, mp]);
  assert.equal(u.status, 0, text(u.stderr));
});

