/**
 * `atomfs verity format|dump`: the dm-verity data it appends to a squashfs layer is byte for byte
 * what `veritysetup format IMG IMG --hash-offset=H --data-blocks=H/4096` writes (same salt and
 * uuid), what it prints matches veritysetup, the result mounts with atomfs, and bad input gives
 * one-line errors without touching the file.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { writeLayout } from '@atomfs/oci';
import {
  compareSnapshots,
  isMounted,
  makeContent,
  makeTempDir,
  processCleanup,
  readMountinfo,
  run,
  runSync,
  snapshotDir,
  useCleanup,
  withLoopMount,
  type RunResult,
} from './lib/index.js';

const ATOMFS = fileURLToPath(new URL('../../bin/atomfs', import.meta.url));
const PREFIX = 'vcli';
const SALT = '00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210';
const UUID = '12345678-9abc-4ef0-8123-456789abcdef';

let work: string;
/** A ~3 MiB image (two tree levels), padded by mksquashfs to 4096. */
let padded: string;
/** The same tree packed with -nopad: bytes_used is not a multiple of 4096. */
let nopad: string;
/** A one-block image (no tree levels: the root hash is the digest of data block 0). */
let tiny: string;
let src: string;

function atomfs(args: string[]): Promise<RunResult> {
  return run([ATOMFS, ...args], { allowFail: true, timeoutMs: 60_000 });
}
function text(b: Buffer): string {
  return b.toString('utf8');
}
function sha(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}
function bytesUsed(file: string): number {
  return Number(readFileSync(file).subarray(40, 48).readBigUInt64LE(0));
}
function hashOffset(file: string): number {
  return Math.ceil(bytesUsed(file) / 4096) * 4096;
}

/** "Label:   \tvalue" lines of veritysetup-style output. */
function fields(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0 && line.includes('\t')) m.set(line.slice(0, i).trim(), line.slice(line.indexOf('\t') + 1).trim());
  }
  return m;
}

/** What veritysetup writes on a copy of `image` (padded to H first, as atomfs verity format does). */
async function veritysetupCopy(image: string, dst: string, extra: string[]): Promise<Map<string, string>> {
  copyFileSync(image, dst);
  const H = hashOffset(image);
  if (statSync(dst).size < H) truncateSync(dst, H);
  const r = await run(['veritysetup', 'format', dst, dst, `--hash-offset=${H}`, `--data-blocks=${H / 4096}`, ...extra]);
  return fields(text(r.stdout));
}

function oneLineError(r: RunResult, pattern: RegExp): void {
  const err = text(r.stderr).trimEnd();
  assert.equal(r.status, 1, `exit 1: ${err}`);
  assert.equal(err.split('\n').length, 1, `one line: ${err}`);
  assert.match(err, /^Error: /);
  assert.match(err, pattern);
  assert.equal(text(r.stdout), '', 'nothing on stdout');
}

before(async () => {
  work = makeTempDir(`${PREFIX}-image`, processCleanup);
  src = join(work, 'src');
  mkdirSync(join(src, 'd'), { recursive: true });
  for (let i = 0; i < 6; i++) writeFileSync(join(src, 'd', `random-${i}`), makeContent('random', 300_000 + i * 7919, 700 + i));
  writeFileSync(join(src, 'text'), makeContent('text', 1_000_000, 777));
  writeFileSync(join(src, 'small'), 'small file\n');
  padded = join(work, 'padded.sqfs');
  nopad = join(work, 'nopad.sqfs');
  tiny = join(work, 'tiny.sqfs');
  const mk = ['-noappend', '-quiet', '-no-progress', '-comp', 'zstd'];
  await run(['mksquashfs', src, padded, ...mk]);
  await run(['mksquashfs', src, nopad, ...mk, '-nopad']);
  mkdirSync(join(work, 'tiny-src'));
  writeFileSync(join(work, 'tiny-src', 'hello'), 'hello\n');
  await run(['mksquashfs', join(work, 'tiny-src'), tiny, ...mk]);
  assert.equal(statSync(padded).size % 4096, 0);
  assert.notEqual(bytesUsed(nopad) % 4096, 0, 'the -nopad image needs padding');
  assert.equal(statSync(tiny).size, 4096, 'one data block');
  assert.ok(statSync(padded).size / 4096 > 128, 'two tree levels');
});
after(() => processCleanup.run());

for (const [name, image, opts] of [
  ['padded image, salt and uuid given', () => padded, ['--salt', SALT, '--uuid', UUID]],
  ['image without padding (-nopad)', () => nopad, ['--salt', SALT, '--uuid', UUID]],
  ['one data block (no tree levels)', () => tiny, ['--salt', SALT, '--uuid', UUID]],
  ['empty salt', () => padded, ['--salt=-', '--uuid', UUID]],
  ['short salt', () => padded, ['--salt', 'abcd', '--uuid', UUID]],
] as const) {
  test(`format is byte for byte veritysetup's: ${name}`, async (t) => {
    const stack = useCleanup(t);
    const dir = makeTempDir(`${PREFIX}-fmt`, stack);
    const ours = join(dir, 'ours.sqfs');
    const theirs = join(dir, 'theirs.sqfs');
    copyFileSync(image(), ours);
    const r = await atomfs(['verity', 'format', ...opts, ours]);
    assert.equal(r.status, 0, text(r.stderr));
    const vs = await veritysetupCopy(image(), theirs, [...opts]);
    assert.equal(sha(ours), sha(theirs), 'identical files');
    assert.equal(statSync(ours).size, statSync(theirs).size);
    const got = fields(text(r.stdout));
    for (const k of ['UUID', 'Hash type', 'Data blocks', 'Data block size', 'Hash blocks', 'Hash block size', 'Hash algorithm', 'Salt', 'Root hash']) {
      assert.equal(got.get(k), vs.get(k), `"${k}" as veritysetup prints it`);
    }
    assert.equal(got.get('Hash offset'), String(hashOffset(image())));
    // --json says the same.
    copyFileSync(image(), ours);
    const j = await atomfs(['verity', 'format', '--json', ...opts, ours]);
    assert.equal(j.status, 0, text(j.stderr));
    const parsed = JSON.parse(text(j.stdout)) as { rootHash: string; salt: string; uuid: string; hashOffset: number; dataBlocks: number };
    assert.equal(parsed.rootHash, vs.get('Root hash'));
    assert.equal(parsed.uuid, vs.get('UUID'));
    assert.equal(parsed.hashOffset, hashOffset(image()));
    assert.equal(parsed.dataBlocks, Number(vs.get('Data blocks')));
    assert.equal(sha(ours), sha(theirs));
    // dump reads back what veritysetup dump reads.
    const d = await atomfs(['verity', 'dump', ours]);
    assert.equal(d.status, 0, text(d.stderr));
    const vd = fields(text((await run(['veritysetup', 'dump', theirs, `--hash-offset=${hashOffset(image())}`])).stdout));
    const dumped = fields(text(d.stdout));
    for (const [k, v] of vd) assert.equal(dumped.get(k), v, `dump "${k}"`);
  });
}

test('default salt and uuid are random; veritysetup verifies the result', async (t) => {
  const stack = useCleanup(t);
  const dir = makeTempDir(`${PREFIX}-rand`, stack);
  const a = join(dir, 'a.sqfs');
  const b = join(dir, 'b.sqfs');
  copyFileSync(padded, a);
  copyFileSync(padded, b);
  const ra = JSON.parse(text((await atomfs(['verity', 'format', '--json', a])).stdout)) as { rootHash: string; salt: string; uuid: string };
  const rb = JSON.parse(text((await atomfs(['verity', 'format', '--json', b])).stdout)) as { rootHash: string; salt: string; uuid: string };
  assert.match(ra.salt, /^[0-9a-f]{64}$/, '32 bytes of salt, like veritysetup');
  assert.notEqual(ra.salt, rb.salt);
  assert.notEqual(ra.uuid, rb.uuid);
  assert.notEqual(ra.rootHash, rb.rootHash);
  const H = hashOffset(padded);
  for (const [f, r] of [[a, ra], [b, rb]] as const) {
    const v = await run(['veritysetup', 'verify', f, f, r.rootHash, `--hash-offset=${H}`], { allowFail: true });
    assert.equal(v.status, 0, `veritysetup verify: ${text(v.stderr)}`);
    const dump = fields(text((await run(['veritysetup', 'dump', f, `--hash-offset=${H}`])).stdout));
    assert.equal(dump.get('Salt'), r.salt);
    assert.equal(dump.get('UUID'), r.uuid);
  }
  // A wrong root hash is rejected by veritysetup: the printed one is not just any hash.
  const wrong = (ra.rootHash[0] === '0' ? '1' : '0') + ra.rootHash.slice(1);
  assert.notEqual((await run(['veritysetup', 'verify', a, a, wrong, `--hash-offset=${H}`], { allowFail: true })).status, 0);
});

test('the formatted layer mounts with atomfs and equals the kernel mount of the image', async (t) => {
  const stack = useCleanup(t);
  const dir = makeTempDir(`${PREFIX}-mount`, stack);
  const layer = join(dir, 'layer.sqfs');
  copyFileSync(nopad, layer);
  const r = JSON.parse(text((await atomfs(['verity', 'format', '--json', layer])).stdout)) as { rootHash: string };
  const oci = join(dir, 'oci');
  await writeLayout(oci, { tag: 'v', layers: [{ file: layer, rootHash: r.rootHash }] });
  const mp = join(dir, 'mp');
  const runDir = join(dir, 'run');
  mkdirSync(mp);
  stack.add(`unmount ${mp}`, () => {
    if (isMounted(mp)) runSync([ATOMFS, 'umount', '--metadir', runDir, mp], { allowFail: true });
    if (isMounted(mp)) runSync(['umount', '-l', mp], { allowFail: true });
  });
  const m = await atomfs(['mount', '--metadir', runDir, `${oci}:v`, mp]);
  assert.equal(m.status, 0, text(m.stderr));
  assert.equal(readMountinfo().find((x) => x.mountpoint === mp)?.fstype, 'fuse.atomfs');
  // The kernel cannot loop-mount the -nopad original (loop sizes are whole sectors); the padded,
  // formatted layer it can: the verity data after bytes_used does not disturb squashfs.
  const kernel = await withLoopMount(layer, (kmp) => snapshotDir(kmp));
  assert.deepEqual(compareSnapshots(kernel, await snapshotDir(mp)), []);
  const v = await atomfs(['verify', '--metadir', runDir, mp]);
  assert.equal(v.status, 0, text(v.stdout) + text(v.stderr));
  assert.match(text(v.stdout), /: OK$/m);
  const u = await atomfs(['umount', '--metadir', runDir, mp]);
  assert.equal(u.status, 0, text(u.stderr));
});

test('bad input: one-line errors, exit 1, the file untouched', async (t) => {
  const stack = useCleanup(t);
  const dir = makeTempDir(`${PREFIX}-bad`, stack);
  const notSquashfs = join(dir, 'random.bin');
  writeFileSync(notSquashfs, makeContent('random', 50_000, 99));
  const before = sha(notSquashfs);
  oneLineError(await atomfs(['verity', 'format', notSquashfs]), /not a usable squashfs image.*bad magic/);
  assert.equal(sha(notSquashfs), before);
  oneLineError(await atomfs(['verity', 'format', join(dir, 'missing.sqfs')]), /missing\.sqfs: no such file/);
  oneLineError(await atomfs(['verity', 'format', dir]), /is not a regular file/);
  const short = join(dir, 'short.sqfs');
  writeFileSync(short, Buffer.from('hsqs'));
  oneLineError(await atomfs(['verity', 'format', short]), /not a squashfs image/);
  // Cut short: the superblock says bytes_used is larger than the file.
  const truncated = join(dir, 'truncated.sqfs');
  copyFileSync(padded, truncated);
  truncateSync(truncated, 8192);
  oneLineError(await atomfs(['verity', 'format', truncated]), /truncated/);
  assert.equal(statSync(truncated).size, 8192);

  // Already formatted: refused unless --force, which gives what veritysetup gives on a fresh copy.
  const done = join(dir, 'done.sqfs');
  copyFileSync(padded, done);
  assert.equal((await atomfs(['verity', 'format', done])).status, 0);
  const formatted = sha(done);
  oneLineError(await atomfs(['verity', 'format', done]), /already has dm-verity data.*--force/);
  assert.equal(sha(done), formatted, 'refusal leaves the file as it was');
  const f = await atomfs(['verity', 'format', '--force', '--salt', SALT, '--uuid', UUID, done]);
  assert.equal(f.status, 0, text(f.stderr));
  await veritysetupCopy(padded, join(dir, 'fresh.sqfs'), ['--salt', SALT, '--uuid', UUID]);
  assert.equal(sha(done), sha(join(dir, 'fresh.sqfs')), '--force replaces the old verity data exactly');

  // Something else after the image: refused too.
  const trailing = join(dir, 'trailing.sqfs');
  copyFileSync(padded, trailing);
  writeFileSync(trailing, Buffer.alloc(4096, 0x55), { flag: 'a' });
  const trailingSha = sha(trailing);
  oneLineError(await atomfs(['verity', 'format', trailing]), /4096 bytes after its squashfs image.*not dm-verity data/);
  assert.equal(sha(trailing), trailingSha);

  const copy = join(dir, 'copy.sqfs');
  copyFileSync(padded, copy);
  const copySha = sha(copy);
  oneLineError(await atomfs(['verity', 'format', '--salt', 'xyz', copy]), /--salt must be hex/);
  oneLineError(await atomfs(['verity', 'format', '--salt', 'ab'.repeat(257), copy]), /--salt must be hex of 1 to 256 bytes/);
  oneLineError(await atomfs(['verity', 'format', '--uuid', 'not-a-uuid', copy]), /--uuid must look like/);
  assert.equal(sha(copy), copySha, 'bad options leave the file alone');

  // dump of an image without verity data, and of a damaged superblock.
  oneLineError(await atomfs(['verity', 'dump', copy]), /no verity data/);
  const damaged = join(dir, 'damaged.sqfs');
  copyFileSync(done, damaged);
  const buf = readFileSync(damaged);
  buf[hashOffset(padded)] ^= 0xff; // the signature
  writeFileSync(damaged, buf);
  oneLineError(await atomfs(['verity', 'dump', damaged]), /signature/);

  // Usage errors: the verity help, exit 2.
  for (const argv of [['verity'], ['verity', 'frobnicate', copy], ['verity', 'format'], ['verity', 'format', copy, copy], ['verity', 'format', '--bogus', copy]]) {
    const u = await atomfs(argv);
    assert.equal(u.status, 2, argv.join(' '));
    assert.match(text(u.stderr), /^Incorrect Usage: .*\nUsage: atomfs verity/, argv.join(' '));
  }
  assert.equal(sha(copy), copySha);
  const h = await atomfs(['verity', '--help']);
  assert.equal(h.status, 0);
  assert.match(text(h.stdout), /veritysetup format IMAGE IMAGE --hash-offset=H/);
});

test('no leftovers under the temp dir', () => {
  // Every test above removes its own dirs; this only catches a mount left by a failing one.
  const ours = readMountinfo().filter((m) => m.mountpoint.startsWith(join(tmpdir(), `atomfs-${PREFIX}-`)));
  assert.deepEqual(ours, []);
  assert.ok(readdirSync(work).length > 0);
});
