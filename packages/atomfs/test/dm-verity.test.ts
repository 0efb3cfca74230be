import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  closeDmLayerIfUnused,
  dmDevice,
  dmLayerStatus,
  isLayerDevice,
  openDmLayer,
  parseVerityStatus,
  parseVerityTable,
  veritysetupCloseArgv,
  veritysetupOpenArgv,
} from '../src/dm-verity.js';
import { kernelDmVerityAvailable } from '../src/host.js';

const HEX = '50bd5b0d0e0de0c0b0a09080706050403020100f0e0d0c0b0a09080706050400';
const ROOT = 'c30086480d06d0389fe0101b54d003d2123776a69fcaf17b6cefbbbe1646484d';

test('veritysetup argv: data and hash device are the blob, tree at the hash offset', () => {
  assert.deepEqual(veritysetupOpenArgv('/oci/blobs/sha256/' + HEX, HEX, ROOT, 1_118_208), [
    'veritysetup',
    'open',
    '/oci/blobs/sha256/' + HEX,
    `${HEX}-verity`,
    '/oci/blobs/sha256/' + HEX,
    ROOT,
    '--hash-offset=1118208',
  ]);
  assert.deepEqual(veritysetupCloseArgv(HEX), ['veritysetup', 'close', `${HEX}-verity`]);
  assert.equal(dmDevice(HEX), `/dev/mapper/${HEX}-verity`);
});

test('dm table and status parsing (formats of dmsetup 1.02)', () => {
  const t = parseVerityTable(`0 2184 verity 1 7:0 7:0 4096 4096 273 274 sha256 ${ROOT} 6a1f2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8\n`);
  assert.equal(t.rootHash, ROOT);
  assert.equal(t.dataBlocks, 273);
  assert.equal(t.hashStartBlock, 274);
  assert.equal(t.algorithm, 'sha256');
  assert.throws(() => parseVerityTable('0 2184 linear 7:0 0'), /not a dm-verity table/);
  assert.equal(parseVerityStatus('0 2184 verity V'), 'V');
  assert.equal(parseVerityStatus('0 2184 verity C'), 'C');
  assert.equal(parseVerityStatus(''), 'unknown');
});

// ---- live: host root with device-mapper (the VM guest of test/vm/run.sh; skipped elsewhere) ----

function sh(argv: string[]): { status: number | null; out: string; err: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  return { status: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}

function must(argv: string[]): string {
  const r = sh(argv);
  assert.equal(r.status, 0, `${argv.join(' ')}: ${r.err}`);
  return r.out;
}

/** A squashfs of one file + `veritysetup format` data, named by its sha256 like an OCI blob. */
function makeBlob(dir: string, content: string): { blob: string; hex: string; root: string; offset: number } {
  const src = join(dir, `src-${content.length}`);
  mkdirSync(src);
  writeFileSync(join(src, 'file'), content);
  const img = join(dir, 'img');
  must(['mksquashfs', src, img, '-noappend', '-quiet', '-no-progress']);
  const offset = statSync(img).size;
  const root = /^Root hash:\s+([0-9a-f]{64})$/m.exec(must(['veritysetup', 'format', img, img, `--hash-offset=${offset}`, `--data-blocks=${offset / 4096}`]))![1]!;
  const hex = createHash('sha256').update(readFileSync(img)).digest('hex');
  const blob = join(dir, hex);
  renameSync(img, blob);
  return { blob, hex, root, offset };
}

function liveSetup(t: TestContext): { dir: string; track: () => void } | undefined {
  const dm = kernelDmVerityAvailable();
  if (!dm.ok) {
    // This project's machines have no device-mapper: test/vm/run.sh runs this in a VM guest.
    if (process.env.ATOMFS_VM_GUEST === '1') assert.fail(`in the VM guest, yet kernel dm-verity is unusable: ${dm.why}`);
    t.skip(`kernel dm-verity unavailable: ${dm.why}`);
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'atomfs-dmunit-'));
  const names: string[] = [];
  t.after(() => {
    for (const n of names) if (existsSync(`/dev/mapper/${n}`)) sh(['dmsetup', 'remove', '--retry', n]);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    // Call once the blobs exist: their devices are closed at the end, also when a test fails.
    track: () => {
      for (const e of readdirSync(dir)) if (/^[0-9a-f]{64}$/.test(e)) names.push(`${e}-verity`);
    },
  };
}

test('live: openDmLayer makes <hex>-verity once, shares it, closes it when unused', (t) => {
  const live = liveSetup(t);
  if (live === undefined) return;
  const b = makeBlob(live.dir, 'shared layer\n'.repeat(1000));
  live.track();
  const first = openDmLayer(b.blob, b.hex, b.root, b.offset);
  assert.deepEqual(first, { device: dmDevice(b.hex), created: true });
  const table = parseVerityTable(must(['dmsetup', 'table', `${b.hex}-verity`]));
  assert.equal(table.rootHash, b.root, 'the kernel verifies against the manifest root hash');
  assert.equal(table.dataBlocks, b.offset / 4096);
  assert.ok(isLayerDevice(b.hex), 'a device over the layer blob is the layer\'s');
  assert.deepEqual(openDmLayer(b.blob, b.hex, b.root, b.offset), { device: dmDevice(b.hex), created: false }, 'a second user shares it');
  assert.equal(dmLayerStatus(b.hex), 'OK');
  closeDmLayerIfUnused(b.hex, [dmDevice(b.hex)]);
  assert.ok(existsSync(dmDevice(b.hex)), 'kept while a mount uses it');
  closeDmLayerIfUnused(b.hex, []);
  assert.ok(!existsSync(dmDevice(b.hex)), 'closed without users');
  assert.equal(sh(['veritysetup', 'status', `${b.hex}-verity`]).status === 0, false, 'veritysetup agrees it is gone');
});

test('live: a wrong root hash is refused at open with nothing left; a foreign device is never closed', (t) => {
  const live = liveSetup(t);
  if (live === undefined) return;
  const b = makeBlob(live.dir, 'layer one\n'.repeat(500));
  const other = makeBlob(live.dir, 'another layer\n'.repeat(700));
  live.track();
  const wrong = b.root.replace(/^./, (c) => (c === '0' ? '1' : '0'));
  assert.throws(() => openDmLayer(b.blob, b.hex, wrong, b.offset), (err: Error) => {
    assert.match(err.message, new RegExp(`^layer sha256:${b.hex}: root hash mismatch .*expected ${wrong}, computed ${b.root}$`));
    return true;
  });
  assert.ok(!existsSync(dmDevice(b.hex)), 'no device left');
  // veritysetup's own verdict on the same data (without a device: a failing one costs udev seconds).
  assert.notEqual(sh(['veritysetup', 'verify', b.blob, b.blob, wrong, `--hash-offset=${b.offset}`]).status, 0);
  assert.equal(sh(['veritysetup', 'verify', b.blob, b.blob, b.root, `--hash-offset=${b.offset}`]).status, 0);

  // Someone else's device under the layer's name, over another file: "invalid root hash", kept.
  must(['veritysetup', 'open', other.blob, `${b.hex}-verity`, other.blob, other.root, `--hash-offset=${other.offset}`]);
  assert.throws(() => openDmLayer(b.blob, b.hex, b.root, b.offset), /invalid root hash/);
  assert.equal(isLayerDevice(b.hex), false);
  closeDmLayerIfUnused(b.hex, []);
  assert.ok(existsSync(dmDevice(b.hex)), 'not ours: left alone');
  must(['veritysetup', 'close', `${b.hex}-verity`]);
});
