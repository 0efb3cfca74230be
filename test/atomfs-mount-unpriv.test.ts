/**
 * Issue 4, as a non-root user: inside `unshare -Umr` (root of its own user namespace, not host
 * root) `atomfs mount` serves the image with its FUSE server, and the tree seen in that namespace
 * equals the kernel's read-only overlayfs of the same layers (made outside, as host root), with
 * the owner mapping the namespace implies. Outside a user namespace the user is told what to do.
 */
import assert from 'node:assert/strict';
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import {
  chmodDevFuse,
  compareSnapshots,
  ensureTestUser,
  mapSnapshot,
  processCleanup,
  run,
  type EntrySnap,
  type Snapshot,
  type TestUser,
} from './lib/index.js';
import { ATOMFS_BIN, cleanAtomfsAtEnd, leftoversUnder, runPlanInUserns, showResult, resetAfterTest } from './atomfs-cli.js';
import type { StepResult } from './atomfs-userns-driver.js';
import { assertRoundsApplied, buildThreeLayerImage, kernelMergedSnapshot, makeSharedTempDir } from './oci-images.js';

const USER = 'atomfs-test-amu';

let user: TestUser;
let work = '';
let oci = '';
let runDir = '';
let kernelView: Snapshot;

before(async () => {
  user = ensureTestUser(USER, processCleanup);
  // This machine ships /dev/fuse 0600 (test/run.sh opens it up too); distributions ship 0666.
  chmodDevFuse();
  work = makeSharedTempDir('amount-unpriv', processCleanup);
  cleanAtomfsAtEnd(processCleanup, work);
  runDir = userDir('run');
  let verityLayers;
  ({ oci, verityLayers } = await buildThreeLayerImage(work));
  kernelView = await kernelMergedSnapshot(verityLayers.map((l) => l.file));
  assert.deepEqual(assertRoundsApplied(kernelView), []);
});
afterEach(() => resetAfterTest(work, [runDir]));
after(() => processCleanup.run());

/** A dir under the work dir owned by the test user. */
function userDir(name: string): string {
  const d = join(work, name);
  mkdirSync(d);
  chownSync(d, user.uid, user.gid);
  return d;
}

function overflow(kind: 'uid' | 'gid'): number {
  return Number(readFileSync(`/proc/sys/kernel/overflow${kind}`, 'utf8').trim());
}

/**
 * What the namespace should see: `unshare -Umr` maps only 0 (to the user), so every other owner
 * in the image is unmapped and shows as the overflow id; trusted.* xattrs are invisible to a
 * user namespace, so only user.* are compared.
 */
function asSeenInUserns(s: Snapshot): Snapshot {
  const ou = overflow('uid');
  const og = overflow('gid');
  return mapSnapshot(s, (e) => {
    e.uid = e.uid === 0 ? 0 : ou;
    e.gid = e.gid === 0 ? 0 : og;
    e.xattrs = Object.fromEntries(Object.entries(e.xattrs).filter(([n]) => n.startsWith('user.')));
    return e;
  });
}

function atomfsStep(r: StepResult | undefined): { status: number | null; stdout: string; stderr: string } {
  if (r === undefined || !('atomfs' in r)) throw new Error(`not an atomfs result: ${JSON.stringify(r)}`);
  return r;
}

describe('non-root user inside unshare -Umr', () => {
  for (const [tag, extra] of [
    ['tri', []],
    ['tri-noverity', ['--allow-missing-verity']],
  ] as const) {
    test(`${tag}: the merged tree in the namespace equals the kernel overlayfs (FUSE path)`, async () => {
      const mp = userDir(`mp-${tag}`);
      const res = await runPlanInUserns(USER, work, {
        env: { ATOMFS_TEST_RUN_DIR: runDir },
        steps: [
          { mntns: true },
          { atomfs: ['mount', ...extra, `${oci}:${tag}`, mp] },
          { readFile: '/proc/self/mountinfo' },
          { snapshot: mp, userXattrsOnly: true },
          { atomfs: ['umount', mp] },
          { readdir: mp },
        ],
      });
      const ns = (res[0] as { mntns: string }).mntns;
      const mount = atomfsStep(res[1]);
      assert.equal(mount.status, 0, showResult(mount));
      const mountinfo = (res[2] as { readFile: string }).readFile;
      const line = mountinfo.split('\n').find((l) => l.split(' ')[4] === mp);
      assert.match(line ?? '', / - fuse\.atomfs /, 'not host root: the FUSE path');
      const snap = res[3] as { snapshot?: EntrySnap[]; error?: string };
      assert.ok(snap.snapshot, `snapshot failed: ${snap.error}`);
      const ours: Snapshot = new Map(snap.snapshot.map((e) => [e.path, e]));
      assert.deepEqual(compareSnapshots(asSeenInUserns(kernelView), ours), []);
      // Owners really are mapped (the comparison above is not comparing nothing).
      assert.equal(ours.get('/owners/u1000-g1000')?.uid, overflow('uid'));
      assert.equal(ours.get('/owners/u0-g0')?.uid, overflow('uid'), 'chowned to 1234 in layer 2');
      assert.equal(ours.get('/many/one')?.uid, 0);
      const umount = atomfsStep(res[4]);
      assert.equal(umount.status, 0, showResult(umount));
      assert.deepEqual(res[5], { readdir: [] });
      // The metadata lives on the host filesystem: meta/<namespace's mntns>/ exists and is empty.
      assert.deepEqual(readdirSync(join(runDir, 'meta', ns)), []);
      assert.deepEqual(leftoversUnder(work), [], 'the server exited with its namespace mount');
    });
  }

  test('--backend kernel is refused (no loop devices without host root); nothing is left', async () => {
    const mp = userDir('mp-kernel-refused');
    const res = await runPlanInUserns(USER, work, {
      env: { ATOMFS_TEST_RUN_DIR: runDir },
      steps: [{ atomfs: ['mount', '--backend', 'kernel', '--allow-missing-verity', `${oci}:tri-noverity`, mp] }, { readdir: mp }],
    });
    const r = atomfsStep(res[0]);
    assert.equal(r.status, 1, showResult(r));
    assert.match(r.stderr, /^Error: --backend kernel needs host root/);
    assert.deepEqual(res[1], { readdir: [] });
    assert.deepEqual(leftoversUnder(work), []);
  });
});

test('a plain non-root user (no user namespace) is told to use one, exit 1, nothing created', async () => {
  const mp = userDir('mp-plain-user');
  const plainRun = userDir('run-plain');
  const r = await run(['runuser', '-u', USER, '--', 'env', `ATOMFS_TEST_RUN_DIR=${plainRun}`, process.execPath, ATOMFS_BIN, 'mount', `${oci}:tri`, mp], { allowFail: true });
  assert.equal(r.status, 1, r.stderr.toString('utf8'));
  // Go atomfs prints this on stdout, word for word.
  assert.equal(
    r.stdout.toString('utf8'),
    'Please run as root, or in a user namespace\n You could try:\n\tlxc-usernsexec -s -- /bin/bash\n or\n\tunshare -Umr -- /bin/bash\nthen run from that shell\n',
  );
  assert.deepEqual(readdirSync(plainRun), [], 'no metadata created');
  assert.deepEqual(readdirSync(mp), []);
  assert.equal(existsSync(join(plainRun, 'meta')), false);
  assert.deepEqual(leftoversUnder(work), []);
});
