/**
 * Issue 3, unprivileged: a non-root user mounts with `atomfs sqfs mount` inside `unshare -Umr`
 * (no setuid helper, no root) and sees what root sees on the kernel's loop mount of the same image,
 * up to the two things a user namespace changes by design (see `asSeenInUserns`).
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  buildImage,
  chmodDevFuse,
  compareSnapshots,
  ensureTestUser,
  generateTree,
  isMounted,
  makeTempDir,
  mapSnapshot,
  processCleanup,
  runAsUserInUserns,
  snapshotDir,
  trackBackingFile,
  useCleanup,
  variantByName,
  withLoopMount,
  type Snapshot,
  type TestUser,
} from './lib/index.js';
import { compareExtras, mountsUnder, sqfsMountProcesses, statExtras, type StatExtras } from './sqfs-mount-helpers.js';
import type { ProbeReport } from './sqfs-mount-userns-probe.js';

const USER = 'atomfs-test-sqfsu';
const PROBE = fileURLToPath(new URL('./sqfs-mount-userns-probe.js', import.meta.url));
/** The kernel's overflow id: what a namespace shows for ids it does not map. */
const OVERFLOW_ID = 65534;

let user: TestUser;
let work: string;
let src: string;
let n = 0;

before(async () => {
  user = ensureTestUser(USER, processCleanup);
  // Distributions ship /dev/fuse 0666; this machine kind ships 0600. Left at 0666 (as test/run.sh
  // sets it), because other unprivileged test files may run at the same time.
  chmodDevFuse();
  work = makeTempDir('sqfsu', processCleanup);
  // The user must reach the images and the probe's mountpoints.
  chmodSync(work, 0o755);
  src = join(work, 'src');
  await generateTree(src, { medium: true });
});
after(() => processCleanup.run());

/**
 * The kernel's view from the host, turned into what the same image must look like from inside
 * the user namespace:
 *  - owners: the namespace maps only its own root (uid/gid 0 inside = the test user outside).
 *    FUSE attributes are in the mounter's namespace, so image ids 0 stay 0 and every other id is
 *    unmapped there and shows as the overflow id 65534.
 *  - xattrs: trusted.* needs CAP_SYS_ADMIN in the initial namespace; inside, the kernel neither
 *    lists nor returns them. user.* must be exactly the kernel's.
 */
function asSeenInUserns(kernel: Snapshot): Snapshot {
  return mapSnapshot(kernel, (e) => {
    e.uid = e.uid === 0 ? 0 : OVERFLOW_ID;
    e.gid = e.gid === 0 ? 0 : OVERFLOW_ID;
    e.xattrs = Object.fromEntries(Object.entries(e.xattrs).filter(([name]) => !name.startsWith('trusted.')));
    return e;
  });
}

describe('non-root user in unshare -Umr', () => {
  for (const [name, extra] of [
    ['gzip-128K', []],
    ['zstd-4K', ['--read-workers', '2']],
  ] as const) {
    test(`${name} ${extra.join(' ')}: the mount inside the namespace equals root's kernel loop mount`, { timeout: 150_000 }, async (t) => {
      const stack = useCleanup(t);
      const variant = variantByName(name);
      const dir = join(work, `case-${++n}`);
      mkdirSync(dir);
      chmodSync(dir, 0o755);
      // If the probe dies half-way, its detached server would keep the namespace alive: kill it.
      stack.add('kill servers left by the probe', () => {
        for (const pid of sqfsMountProcesses(dir)) process.kill(pid, 'SIGKILL');
      });
      const image = join(dir, `${name}.sqfs`);
      trackBackingFile(image);
      await buildImage(src, image, variant);
      chmodSync(image, 0o644);
      const mp = join(dir, 'mnt');
      const tmp = join(dir, 'tmp');
      for (const d of [mp, tmp]) {
        mkdirSync(d);
        chownSync(d, user.uid, user.gid);
      }

      const r = await runAsUserInUserns(USER, [process.execPath, PROBE, image, mp, tmp, ...extra], { timeoutMs: 120_000 });
      assert.equal(r.status, 0, `probe failed:\n${r.stderr.toString('utf8')}`);
      const report = JSON.parse(r.stdout.toString('utf8').trim().split('\n').at(-1)!) as ProbeReport;
      assert.equal(report.uid, 0, 'root inside the namespace');
      assert.equal(report.gid, 0);
      assert.equal(report.fstype, 'fuse.atomfs');
      assert.equal(report.umountStatus, 0, 'atomfs sqfs umount inside the namespace');
      assert.equal(report.serverExited, true, 'the detached server exited after umount');
      assert.equal(report.stillMounted, false);
      assert.deepEqual(report.tmpLeft, [], 'the default log dir was removed on clean exit');
      // The mount lived only in the namespace; nothing of it is visible or running out here.
      assert.equal(isMounted(mp), false);
      assert.deepEqual(mountsUnder(dir), []);
      assert.deepEqual(sqfsMountProcesses(dir), []);

      const ours: Snapshot = new Map(report.entries.map((e) => [e.path, e]));
      const { kernel, kernelExtras } = await withLoopMount(image, async (kmp) => {
        const snap = await snapshotDir(kmp);
        return { kernel: snap, kernelExtras: statExtras(kmp, snap) };
      });
      assert.ok(kernel.size > 900, `the tree is not trivially small (${kernel.size} entries)`);
      assert.ok(
        [...kernel.values()].some((e) => e.uid !== 0) && [...kernel.values()].some((e) => Object.keys(e.xattrs).some((x) => x.startsWith('user.'))),
        'the tree has non-root owners and user.* xattrs, so the mapping rules are exercised',
      );
      assert.deepEqual(compareSnapshots(asSeenInUserns(kernel), ours), [], 'inside the namespace vs the kernel loop mount');
      for (const [k, e] of kernel) if (e.type === 'dir') assert.equal(ours.get(k)!.size, e.size, `dir size of ${k}`);
      const oursExtras = new Map<string, StatExtras>(
        Object.entries(report.extras).map(([k, e]) => [
          k,
          { ino: BigInt(e.ino!), blocks: BigInt(e.blocks!), blksize: BigInt(e.blksize!), atimeNs: BigInt(e.atimeNs!), mtimeNs: BigInt(e.mtimeNs!), ctimeNs: BigInt(e.ctimeNs!) },
        ]),
      );
      // blksize: see sqfs-mount.test.ts (the kernel's squashfs reports 1 KiB, we the image block size).
      assert.deepEqual(compareExtras(kernelExtras, oursExtras, ['blksize']), []);
    });
  }
});
