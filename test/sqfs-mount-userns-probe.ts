/**
 * Runs INSIDE `unshare -Umr` as a non-root user (started by sqfs-mount-unpriv.test.ts): mounts an
 * image with the real CLI, snapshots the mount while the namespace is alive, unmounts, and prints
 * one JSON line for the test to compare with the kernel's loop mount made outside.
 *
 *   node sqfs-mount-userns-probe.js IMAGE MOUNTPOINT CLI_TMPDIR [mount options...]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isMounted, readMountinfo, run, snapshotDir, type EntrySnap } from './lib/index.js';
import { atomfs, serverPid, statExtras, waitForExit } from './sqfs-mount-helpers.js';

export interface ProbeReport {
  /** uid/gid as seen inside the namespace (0: root there). */
  uid: number;
  gid: number;
  /** fstype of the mount as the namespace's mountinfo shows it. */
  fstype: string | undefined;
  entries: EntrySnap[];
  /** Other lstat fields, per path key (bigints as decimal strings). */
  extras: Record<string, Record<string, string>>;
  mountStderr: string;
  umountStatus: number | null;
  serverExited: boolean;
  stillMounted: boolean;
  tmpLeft: string[];
}

async function main(): Promise<void> {
  const [imageArg, mpArg, tmpdir, ...extra] = process.argv.slice(2);
  if (imageArg === undefined || mpArg === undefined || tmpdir === undefined) throw new Error('usage: probe IMAGE MP TMPDIR [opts]');
  const image = resolve(imageArg);
  const mp = resolve(mpArg);
  const env = { tmpdir };
  const m = await atomfs(['sqfs', 'mount', ...extra, image, mp], env);
  if (m.status !== 0) throw new Error(`mount failed (exit ${m.status}): ${m.stderr.toString('utf8')}`);
  const pid = serverPid(mp);
  let partial: Omit<ProbeReport, 'umountStatus' | 'serverExited' | 'stillMounted' | 'tmpLeft'>;
  let umountStatus: number | null;
  try {
    const snap = await snapshotDir(mp);
    const extras: ProbeReport['extras'] = {};
    for (const [k, e] of statExtras(mp, snap)) extras[k] = Object.fromEntries(Object.entries(e).map(([f, v]) => [f, String(v)]));
    const ids = await run(['id', '-u']);
    const gids = await run(['id', '-g']);
    partial = {
      uid: Number(ids.stdout.toString('utf8').trim()),
      gid: Number(gids.stdout.toString('utf8').trim()),
      fstype: readMountinfo().find((x) => x.mountpoint === mp)?.fstype,
      entries: [...snap.values()],
      extras,
      mountStderr: m.stderr.toString('utf8'),
    };
  } finally {
    // Unmount in any case: a server left running would keep this namespace (and the mount) alive.
    const u = await atomfs(['sqfs', 'umount', mp], env);
    umountStatus = u.status;
    if (u.status !== 0) await run(['umount', '-l', mp], { allowFail: true });
  }
  const report: ProbeReport = {
    ...partial,
    umountStatus,
    serverExited: pid === undefined ? false : await waitForExit(pid),
    stillMounted: isMounted(mp),
    tmpLeft: readdirSync(tmpdir),
  };
  process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`probe: ${err instanceof Error ? err.stack : String(err)}\n`);
  // Best effort: show what the detached server logged (default log: TMPDIR/atomfs-sqfs-*/...).
  const tmp = process.argv[4];
  try {
    for (const d of tmp === undefined ? [] : readdirSync(tmp)) {
      for (const f of readdirSync(join(tmp, d))) process.stderr.write(readFileSync(join(tmp, d, f), 'utf8'));
    }
  } catch {
    // nothing to add
  }
  process.exitCode = 1;
});
