/**
 * A non-root user: mounting inside `unshare -Umr` works and serves correct content; outside a
 * user namespace the errors say what to do.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ensureDevFuseOpenToAll, ensureTestUser, fuseMountsUnder, makeTempDir, removeTempDir, run, runOk, TEST_USER } from './helpers.js';

const PROBE = fileURLToPath(new URL('./probe.js', import.meta.url));

interface ProbeResult {
  ok: boolean;
  name?: string;
  message?: string;
  uid?: number;
}

async function probeAs(args: string[], inUserns: boolean): Promise<ProbeResult> {
  const wrapper = ['-u', TEST_USER, '--', ...(inUserns ? ['unshare', '-Umr'] : []), process.execPath, PROBE, ...args];
  const r = await run('runuser', wrapper, { timeoutMs: 120_000 });
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  assert.equal(r.code, 0, `probe ${args.join(' ')} exit ${r.code ?? r.signal}: ${r.stderr}`);
  return JSON.parse(last) as ProbeResult;
}

describe('non-root user', () => {
  let dir = '';
  let uid = 0;
  let removeUser: (() => Promise<void>) | undefined;
  before(async () => {
    removeUser = await ensureTestUser();
    uid = Number((await runOk('id', ['-u', TEST_USER])).trim());
    dir = makeTempDir();
    chmodSync(dir, 0o755);
  });
  after(async () => {
    try {
      await removeTempDir(dir);
    } finally {
      await removeUser?.();
    }
    assert.deepEqual(fuseMountsUnder(dir), []);
  });

  const userDir = (name: string): string => {
    const p = join(dir, name);
    mkdirSync(p);
    chownSync(p, uid, uid);
    return p;
  };

  it('mounts inside unshare -Umr and serves the whole tree correctly (read workers on)', async () => {
    ensureDevFuseOpenToAll();
    const mp = userDir('mnt-userns');
    const r = await probeAs(['userns-check', mp], true);
    assert.equal(r.ok, true);
    assert.equal(r.uid, 0, 'root inside the namespace');
    assert.deepEqual(fuseMountsUnder(dir), [], 'the mount lived only in the namespace');
  });

  it('outside a user namespace, mount(8) refuses and the error carries its message and the remedy', async () => {
    ensureDevFuseOpenToAll();
    const mp = userDir('mnt-plain');
    const r = await probeAs(['mount', mp], false);
    assert.equal(r.ok, false);
    assert.equal(r.name, 'MountCommandError');
    assert.match(r.message!, /mount of .* failed \(exit \d+\): mount: /);
    assert.match(r.message!, /unshare -Umr/);
    assert.deepEqual(fuseMountsUnder(dir), []);
  });

  it('an inaccessible FUSE device is explained (chmod 0666 or user namespace)', async () => {
    // A private copy of the device node with mode 0600, so the real /dev/fuse stays untouched.
    const devDir = join(dir, 'dev');
    mkdirSync(devDir);
    chmodSync(devDir, 0o755);
    const dev = join(devDir, 'fuse');
    await runOk('mknod', ['-m', '0600', dev, 'c', '10', '229']);
    const r = await probeAs(['open-device', dev], false);
    assert.equal(r.ok, false);
    assert.equal(r.name, 'FuseDeviceError');
    assert.match(r.message!, /permission denied for uid \d+ \(mode 0600, owner uid 0\)/);
    assert.match(r.message!, /chmod 0666/);
    assert.match(r.message!, /unshare -Umr/);
    const inNs = await probeAs(['open-device', dev], true);
    assert.equal(inNs.ok, false);
    assert.match(inNs.message!, /in a user namespace/);
  });
});
