/**
 * Issue 16: the packed packages install as a user would install them (`npm install -g` of the
 * tarballs `pnpm pack` makes, npm's defaults: no install scripts run, so no native compile) and
 * give a working `atomfs`: it lists and mounts the sample image, its server started from the
 * installed package.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { isMounted, makeTempDir, run, useCleanup } from './lib/index.js';
import { describe, guardNoDebris, guardOciMount, serversUnder } from './reliability-common.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SAMPLE = join(REPO, 'sample/oci:sample');

test('npm install -g of the packed packages gives a working atomfs (ls, sqfs cat, mount served from the installed package)', { timeout: 600_000 }, async (t) => {
  const stack = useCleanup(t);
  const dir = makeTempDir('packaging', stack);
  guardNoDebris(stack, dir);
  const packs = join(dir, 'packs');
  mkdirSync(packs);
  for (const p of readdirSync(join(REPO, 'packages'))) {
    await run(['pnpm', 'pack', '--pack-destination', packs], { cwd: join(REPO, 'packages', p), timeoutMs: 120_000 });
  }
  const tarballs = readdirSync(packs).map((f) => join(packs, f));
  assert.equal(tarballs.length, readdirSync(join(REPO, 'packages')).length);
  for (const tgz of tarballs) {
    const manifest = execFileSync('tar', ['-xzOf', tgz, 'package/package.json'], { encoding: 'utf8' });
    assert.doesNotMatch(manifest, /workspace:/, `${tgz}: no workspace: ranges`);
    const files = execFileSync('tar', ['-tzf', tgz], { encoding: 'utf8' });
    assert.match(files, /^package\/LICENSE$/m, `${tgz} has its LICENSE`);
  }
  const prefix = join(dir, 'prefix');
  const i = await run(['npm', 'install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', ...tarballs], { allowFail: true, timeoutMs: 480_000 });
  assert.equal(i.status, 0, describe(i));
  const bin = join(prefix, 'bin', 'atomfs');
  const v = await run([bin, '--version']);
  assert.match(v.stdout.toString(), /^atomfs \d/);
  const ls = await run([bin, 'ls', SAMPLE]);
  const expected = await run([join(REPO, 'bin/atomfs'), 'ls', SAMPLE]);
  assert.equal(ls.stdout.toString(), expected.stdout.toString(), 'the installed CLI lists the sample as the checkout’s does');
  const cat = await run([bin, 'sqfs', 'cat', join(REPO, 'sample/sample.sqfs'), '/etc/os-release']);
  assert.ok(cat.stdout.length > 0);

  const mp = join(dir, 'mp');
  mkdirSync(mp);
  const runDir = join(dir, 'run');
  guardOciMount(stack, runDir, mp);
  const m = await run([bin, 'mount', '--metadir', runDir, SAMPLE, mp], { allowFail: true, timeoutMs: 60_000 });
  assert.equal(m.status, 0, describe(m));
  const [pid] = serversUnder(runDir);
  assert.ok(pid !== undefined, 'a server runs');
  const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  assert.ok(cmd.includes(prefix), `the server runs from the installed package: ${cmd}`);
  assert.ok(readdirSync(mp).length > 0);
  const u = await run([bin, 'umount', '--metadir', runDir, mp], { allowFail: true });
  assert.equal(u.status, 0, describe(u));
  assert.equal(isMounted(mp), false);
});
