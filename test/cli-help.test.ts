/**
 * Issue 16: `--help`/`-h` works for every command and subcommand, `atomfs help CMD [SUB]` prints
 * the same, usage errors exit 2 with one "Incorrect Usage:" line and the help on stderr.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { run } from './lib/index.js';
import { ATOMFS, describe } from './reliability-common.js';

const COMMANDS = [
  ['mount'],
  ['umount'],
  ['unmount'],
  ['list'],
  ['verify'],
  ['ls'],
  ['cat'],
  ['pull'],
  ['verity'],
  ['verity', 'format'],
  ['verity', 'dump'],
  ['sqfs'],
  ['sqfs', 'ls'],
  ['sqfs', 'cat'],
  ['sqfs', 'extract'],
  ['sqfs', 'info'],
  ['sqfs', 'mount'],
  ['sqfs', 'umount'],
];

const atomfs = (args: string[]) => run([process.execPath, ATOMFS, ...args], { allowFail: true, timeoutMs: 30_000 });

test('every command and subcommand: --help and -h print its usage on stdout, exit 0, and equal `atomfs help` of it', async () => {
  for (const cmd of COMMANDS) {
    const viaHelp = await atomfs(['help', ...cmd]);
    assert.equal(viaHelp.status, 0, `help ${cmd.join(' ')}: ${describe(viaHelp)}`);
    for (const flag of ['--help', '-h']) {
      const r = await atomfs([...cmd, flag]);
      assert.equal(r.status, 0, `${cmd.join(' ')} ${flag}: ${describe(r)}`);
      const out = r.stdout.toString();
      assert.match(out, /^Usage: atomfs /, `${cmd.join(' ')} ${flag}`);
      assert.equal(r.stderr.toString(), '', `${cmd.join(' ')} ${flag}: nothing on stderr`);
      assert.equal(out, viaHelp.stdout.toString(), `${cmd.join(' ')} ${flag} = atomfs help ${cmd.join(' ')}`);
    }
  }
  const sub = await atomfs(['sqfs', 'mount', '--help']);
  assert.match(sub.stdout.toString(), /^Usage: atomfs sqfs mount /, 'a subcommand with its own help shows it');
});

test('usage errors exit 2: one "Incorrect Usage:" line, then the help, all on stderr; other failures exit 1', async () => {
  const cases = [[], ['sqfs'], ['bogus'], ['--bogus'], ['help', 'bogus'], ['mount', 'x:y'], ['mount', '--bogus', 'a:b', '/'], ['umount'], ['ls'], ['cat', 'a:b'], ['verity'], ['verity', 'format'], ['sqfs', 'ls'], ['sqfs', 'frobnicate'], ['list', 'extra']];
  for (const args of cases) {
    const r = await atomfs(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${describe(r)}`);
    assert.equal(r.stdout.toString(), '', `${args.join(' ')}: nothing on stdout`);
    const err = r.stderr.toString();
    if (args.length > 0) assert.match(err, /^Incorrect Usage: [^\n]+\nUsage: atomfs /, args.join(' '));
  }
  const fail = await atomfs(['ls', '/no/such/dir:tag']);
  assert.equal(fail.status, 1, describe(fail));
  assert.match(fail.stderr.toString(), /^Error: [^\n]+\n$/);
});

test('both ways bin/atomfs runs the CLI (its bundle, and with ATOMFS_UNBUNDLED=1 the tsc output) give the same results, mount included', async (t) => {
  const { mkdtempSync, mkdirSync, readdirSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const sample = fileURLToPath(new URL('../../sample/oci:sample', import.meta.url));
  const dir = mkdtempSync('/tmp/atomfs-cli-paths-');
  t.after(() => {
    run(['umount', '-l', join(dir, 'mp')], { allowFail: true }).finally(() => rmSync(dir, { recursive: true, force: true }));
  });
  const outputs: string[] = [];
  for (const unbundled of ['0', '1']) {
    const env: NodeJS.ProcessEnv = { ...process.env, ATOMFS_UNBUNDLED: unbundled };
    delete env.ATOMFS_TEST_RUN_DIR;
    const go = (args: string[]) => run([process.execPath, ATOMFS, ...args], { allowFail: true, env, timeoutMs: 60_000 });
    const mp = join(dir, 'mp');
    mkdirSync(mp, { recursive: true });
    const runDir = join(dir, `run${unbundled}`);
    const m = await go(['mount', '--metadir', runDir, sample, mp]);
    assert.equal(m.status, 0, describe(m));
    const listing = readdirSync(mp).join(',');
    const v = await go(['verify', '--metadir', runDir, mp]);
    const u = await go(['umount', '--metadir', runDir, mp]);
    assert.equal(u.status, 0, describe(u));
    const ls = await go(['ls', '--json', sample]);
    outputs.push(`${listing}\n${v.stdout.toString()}\n${ls.stdout.toString()}`);
  }
  assert.equal(outputs[1], outputs[0]);
  assert.match(outputs[0]!, /: OK\n/);
});

test('sqfs extract shows a progress line on a terminal (script(1) gives it one), none into a pipe', async (t) => {
  const { mkdtempSync, mkdirSync, rmSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const dir = mkdtempSync('/tmp/atomfs-progress-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  for (let d = 0; d < 40; d++) {
    mkdirSync(join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < 200; f++) writeFileSync(join(src, `d${d}`, `f${f}`), `${d}/${f}\n`.repeat(50));
  }
  const img = join(dir, 'img.sqfs');
  await run(['mksquashfs', src, img, '-noappend', '-quiet', '-no-progress', '-comp', 'gzip']);
  const tty = await run(['script', '-qec', `${process.execPath} ${ATOMFS} sqfs extract ${img} ${join(dir, 'out1')}`, '/dev/null'], { timeoutMs: 120_000 });
  const shown = tty.stdout.toString();
  assert.match(shown, /\[=*\s*\] \d+\/8041 +\d+%/, `a progress line on the terminal: ${JSON.stringify(shown.slice(0, 300))}`);
  assert.match(shown, /extracted 8000 files, 41 directories/);
  const piped = await run([process.execPath, ATOMFS, 'sqfs', 'extract', img, join(dir, 'out2')]);
  assert.doesNotMatch(piped.stderr.toString(), /%/);
  assert.match(piped.stderr.toString(), /^extracted 8000 files, 41 directories/);
});
