import assert from 'node:assert/strict';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BufferByteSource,
  FileByteSource,
  VerityError,
  VerityMismatchError,
  openVerified,
  readSuperblock,
  verifyAll,
  verifyAllSync,
  type TreeGeometry,
  type VerifiedSource,
} from '../src/index.js';
import { cleanup, prng, tempDir } from '@atomfs/testkit';
import { ViewSource, requireTool, veritysetupFormat, veritysetupVerify, writeDataFile } from './helpers.js';

/**
 * Seeded single-bit flips anywhere in a layer file. Whatever is flipped: opening fails with a typed
 * error, or reads of the affected blocks throw VerityMismatchError, and every read that succeeds
 * returns the original bytes. Full verification fails for every flip in covered bytes, and agrees
 * with `veritysetup verify` on pass/fail.
 */

type Region = 'data' | 'tree' | 'superblock' | 'gap';

interface Layer {
  path: string;
  H: number;
  rootHash: string;
  orig: Buffer;
  g: TreeGeometry;
}

function makeLayer(dir: string, name: string, blocks: number): Layer {
  const path = join(dir, `${name}.img`);
  const H = blocks * 4096;
  writeDataFile(path, name, H);
  truncateSync(path, H);
  const vs = veritysetupFormat(path, H, blocks);
  const orig = readFileSync(path);
  const { geometry } = readSuperblock(new BufferByteSource(orig), H, name);
  return { path, H, rootHash: vs.rootHash, orig, g: geometry };
}

interface ReadOutcome {
  opened: boolean;
  failedBlocks: number[];
}

/** Opens the tampered image and reads every data block; asserts the no-wrong-bytes invariant. */
function readAll(layer: Layer, img: Buffer, what: string): ReadOutcome {
  let vs: VerifiedSource;
  try {
    vs = openVerified(new ViewSource(img), { hashOffset: layer.H, rootHash: layer.rootHash, label: what });
  } catch (err) {
    assert.ok(err instanceof VerityError, `${what}: open threw untyped ${String(err)}`);
    assert.ok(!err.message.includes('\n'));
    return { opened: false, failedBlocks: [] };
  }
  const failedBlocks: number[] = [];
  for (let p = 0; p < vs.size; p += 4096) {
    try {
      const got = vs.read(p, 4096);
      assert.ok(got.equals(layer.orig.subarray(p, p + 4096)), `${what}: wrong bytes returned for block ${p / 4096}`);
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      assert.ok(err instanceof VerityMismatchError, `${what}: read threw ${String(err)}`);
      failedBlocks.push(p / 4096);
    }
  }
  // One read over everything: all or nothing (small images only: a fresh 64 MiB buffer is slow here).
  if (vs.size > 8 << 20) return { opened: true, failedBlocks };
  try {
    const all = vs.read(0, vs.size);
    assert.equal(failedBlocks.length, 0, `${what}: big read succeeded over bad blocks`);
    assert.ok(all.equals(layer.orig.subarray(0, vs.size)));
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    assert.ok(err instanceof VerityMismatchError);
    assert.ok(failedBlocks.length > 0, `${what}: big read failed though every block read fine`);
  }
  return { opened: true, failedBlocks };
}

/** verifyAllSync on a buffer: null when it passes, the typed error otherwise. */
function fullVerify(layer: Layer, img: Buffer, what: string): VerityError | null {
  try {
    const r = verifyAllSync(new ViewSource(img), { hashOffset: layer.H, rootHash: layer.rootHash, label: what });
    assert.equal(r.ok, true);
    return null;
  } catch (err) {
    assert.ok(err instanceof VerityError, `${what}: verifyAll threw untyped ${String(err)}`);
    return err;
  }
}

function regionBounds(layer: Layer, region: Region): [number, number] {
  const treeStart = layer.g.hashStartBlock * 4096;
  switch (region) {
    case 'data':
      return [0, layer.H];
    case 'superblock':
      return [layer.H, layer.H + 512];
    case 'gap':
      return [layer.H + 512, treeStart];
    case 'tree':
      return [treeStart, layer.orig.length];
  }
}

describe('tampered layers', () => {
  let dir: string;
  let layer: Layer;
  before(() => {
    requireTool('veritysetup');
    dir = tempDir('tamper');
    layer = makeLayer(dir, 'two-levels', 300); // 2 levels; last leaf block a third full (spare area)
  });
  after(() => cleanup(dir));

  it('200 seeded bit flips: typed failures, never wrong bytes, verifyAll agrees with veritysetup', async () => {
    const rand = prng(20240601);
    const regions: Region[] = ['data', 'data', 'data', 'data', 'tree', 'tree', 'tree', 'superblock', 'superblock', 'gap'];
    const tally = { sampled: 0, superblockPass: 0, superblockFail: 0 };
    const img = Buffer.alloc(layer.orig.length);
    for (let i = 0; i < 200; i++) {
      const region = regions[rand() % regions.length]!;
      const [lo, hi] = regionBounds(layer, region);
      const pos = lo + (rand() % (hi - lo));
      const bit = rand() % 8;
      const what = `flip ${i}: ${region} byte ${pos} bit ${bit}`;
      layer.orig.copy(img);
      img[pos]! ^= 1 << bit;

      const reads = readAll(layer, img, what);
      const verr = fullVerify(layer, img, what);
      switch (region) {
        case 'data': {
          const block = Math.floor(pos / 4096);
          assert.ok(reads.opened, `${what}: open failed`);
          assert.deepEqual(reads.failedBlocks, [block], what);
          assert.ok(verr instanceof VerityMismatchError, `${what}: ${String(verr)}`);
          assert.equal(verr.level, -1);
          assert.equal(verr.index, block);
          break;
        }
        case 'tree':
          assert.ok(!reads.opened || reads.failedBlocks.length > 0, `${what}: tree flip went unnoticed by reads`);
          assert.ok(verr !== null, `${what}: verifyAll passed`);
          break;
        case 'gap':
          // Not covered by anything (veritysetup never reads it): must stay harmless.
          assert.ok(reads.opened && reads.failedBlocks.length === 0, what);
          assert.equal(verr, null, what);
          break;
        case 'superblock':
          if (verr === null) tally.superblockPass++;
          else tally.superblockFail++;
          break;
      }
      // veritysetup verify on a sample, weighted to superblock flips: that is where they could disagree.
      if (i % 7 === 0 || (region === 'superblock' && i % 3 === 0)) {
        tally.sampled++;
        const p = join(dir, 'tampered.img');
        writeFileSync(p, img);
        assert.equal(veritysetupVerify(p, layer.H, layer.rootHash), verr === null, `${what}: veritysetup disagrees with verifyAll (${String(verr)})`);
        // The threaded file path gives the same verdict.
        const src = new FileByteSource(p);
        try {
          const r = await verifyAll(src, { hashOffset: layer.H, rootHash: layer.rootHash, threads: 2, collect: true });
          assert.equal(r.ok, verr === null, what);
        } catch (err) {
          assert.ok(err instanceof VerityError);
          assert.notEqual(verr, null, what);
        } finally {
          src.close();
        }
      }
    }
    assert.ok(tally.sampled >= 30, `only ${tally.sampled} sampled against veritysetup`);
    // Both kinds must occur, or the superblock branch tested nothing.
    assert.ok(tally.superblockFail > 0 && tally.superblockPass > 0, JSON.stringify(tally));
  });

  it('collect mode reports every bad block in order', () => {
    const img = Buffer.from(layer.orig);
    const bad = [3, 250, 251, 280, 299];
    for (const b of bad) img[b * 4096 + 17]! ^= 4;
    // Also dirty the spare area after the last digest of the last leaf block.
    const g = layer.g;
    const spare = (g.levelStart[0]! + g.levelSize[0]! - 1) * 4096 + 4000;
    img[spare]! ^= 1;
    const r = verifyAllSync(new BufferByteSource(img), { hashOffset: layer.H, rootHash: layer.rootHash, label: 'c', collect: true });
    assert.equal(r.ok, false);
    const dataErrs = r.errors.filter((e) => e instanceof VerityMismatchError && e.level === -1) as VerityMismatchError[];
    assert.deepEqual(
      dataErrs.map((e) => e.index),
      bad,
    );
    assert.ok(r.errors.some((e) => e.name === 'VeritySpareAreaError' && (e as VerityMismatchError).offset === spare));
    const capped = verifyAllSync(new BufferByteSource(img), { hashOffset: layer.H, rootHash: layer.rootHash, collect: true, maxErrors: 2 });
    assert.equal(capped.errors.length, 2);
    assert.throws(() => verifyAllSync(new BufferByteSource(img), { hashOffset: layer.H, rootHash: layer.rootHash }), (err: unknown) => {
      assert.ok(err instanceof VerityMismatchError);
      assert.equal(err.index, 3);
      return true;
    });
  });

  it('3-level tree: flips in every level and spare area are caught', async () => {
    const big = makeLayer(dir, 'three-levels', 16500);
    const g = big.g;
    assert.equal(g.levels, 3);
    const lastOf = (level: number): number => g.levelStart[level]! + g.levelSize[level]! - 1;
    const targets: Array<[string, number]> = [
      ['top block digest', g.levelStart[2]! * 4096 + 5],
      ['top block spare', g.levelStart[2]! * 4096 + 4095],
      ['level 1 first block', g.levelStart[1]! * 4096 + 40],
      ['level 1 last block spare', lastOf(1) * 4096 + 4090],
      ['level 0 middle block', (g.levelStart[0]! + 60) * 4096 + 1000],
      ['level 0 last block spare', lastOf(0) * 4096 + 4095],
      ['data block in the last leaf', 16499 * 4096 + 5],
    ];
    const rand = prng(3);
    const p = join(dir, 'tampered3.img');
    const img = Buffer.alloc(big.orig.length);
    for (const [what, pos] of targets) {
      big.orig.copy(img);
      img[pos]! ^= 1 << rand() % 8;
      const reads = readAll(big, img, what);
      assert.ok(!reads.opened || reads.failedBlocks.length > 0, `${what}: unnoticed`);
      writeFileSync(p, img);
      const src = new FileByteSource(p);
      try {
        await assert.rejects(verifyAll(src, { hashOffset: big.H, rootHash: big.rootHash, label: what }), VerityError, what);
      } finally {
        src.close();
      }
      assert.equal(veritysetupVerify(p, big.H, big.rootHash), false, what);
    }
  });
});
