import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  VeritySuperblockError,
  computeGeometry,
  digestSlot,
  encodeSuperblock,
  hashOffsetFor,
  hashStartBlockFor,
  parseSuperblock,
  parseUuid,
  validateSuperblock,
  type VeritySuperblock,
} from '../src/index.js';

/**
 * Tree layout against the worked layouts of the format reference (cryptsetup hash_levels, sha256,
 * 4 KiB blocks, superblock at 0 so the tree starts at block 1), plus superblock round trips.
 * Byte-level agreement with veritysetup itself is in format.test.ts.
 */
describe('tree geometry', () => {
  const sha256 = { hashType: 1 as const, algorithm: 'sha256', dataBlockSize: 4096, hashBlockSize: 4096 };
  const table: Array<[number, number, Array<[number, number]>, number]> = [
    // data blocks, levels, [first block, count] for level L-1 .. 0, hash file blocks
    [1, 0, [], 1],
    [128, 1, [[1, 1]], 2],
    [129, 2, [[1, 1], [2, 2]], 4],
    [16384, 2, [[1, 1], [2, 128]], 130],
    [16385, 3, [[1, 1], [2, 2], [4, 129]], 133],
    [25600, 3, [[1, 1], [2, 2], [4, 200]], 204],
    [262144, 3, [[1, 1], [2, 16], [18, 2048]], 2066],
    [2097153, 4, [[1, 1], [2, 2], [4, 129], [133, 16385]], 16518],
  ];
  for (const [dataBlocks, levels, layout, fileBlocks] of table) {
    it(`${dataBlocks} data blocks`, () => {
      const g = computeGeometry({ ...sha256, dataBlocks }, hashStartBlockFor(0, 4096));
      assert.equal(g.levels, levels);
      assert.equal(g.hashesPerBlock, 128);
      assert.equal(g.slotSize, 32);
      const got: Array<[number, number]> = [];
      for (let i = g.levels - 1; i >= 0; i--) got.push([g.levelStart[i]!, g.levelSize[i]!]);
      assert.deepEqual(got, layout);
      assert.equal(g.hashEndBlock, fileBlocks);
    });
  }

  it('digest slots: v1 pads digests to a power of two, v0 packs them', () => {
    const v1 = computeGeometry({ hashType: 1, algorithm: 'sha1', dataBlockSize: 4096, hashBlockSize: 4096, dataBlocks: 1000 }, 1);
    const v0 = computeGeometry({ hashType: 0, algorithm: 'sha1', dataBlockSize: 4096, hashBlockSize: 4096, dataBlocks: 1000 }, 1);
    assert.equal(v1.hashesPerBlock, 128); // 4096/20 = 204 -> 128
    assert.equal(v1.slotSize, 32);
    assert.equal(v0.slotSize, 20);
    assert.deepEqual(digestSlot(v1, 0, 130), { block: v1.levelStart[0]! + 1, offset: 2 * 32 });
    assert.deepEqual(digestSlot(v0, 0, 130), { block: v0.levelStart[0]! + 1, offset: 2 * 20 });
    assert.deepEqual(digestSlot(v1, 1, 7), { block: v1.levelStart[1]!, offset: 7 * 32 });
  });

  it('large devices: counts beyond 2^32 blocks stay exact', () => {
    const g = computeGeometry({ ...sha256, dataBlocks: 2 ** 40 }, 10);
    assert.equal(g.levels, 6);
    assert.equal(g.levelSize[0], 2 ** 33);
    assert.equal(g.levelSize[5], 1);
  });

  it('hashOffsetFor rounds up to 4096', () => {
    assert.equal(hashOffsetFor(0), 0);
    assert.equal(hashOffsetFor(1), 4096);
    assert.equal(hashOffsetFor(4096), 4096);
    assert.equal(hashOffsetFor(4097), 8192);
    assert.equal(hashStartBlockFor(8192, 4096), 3);
    assert.equal(hashStartBlockFor(8192 + 512, 4096), 3);
    assert.equal(hashStartBlockFor(8192, 4096, false), 2);
  });

  it('refuses impossible parameters', () => {
    assert.throws(() => computeGeometry({ ...sha256, dataBlocks: 0 }, 1), { name: 'VerityArgumentError' });
    assert.throws(() => computeGeometry({ ...sha256, dataBlockSize: 3000, dataBlocks: 1 }, 1), { name: 'VerityArgumentError' });
    assert.throws(() => computeGeometry({ ...sha256, algorithm: 'md4x', dataBlocks: 1 }, 1), { name: 'VerityArgumentError' });
    assert.throws(() => computeGeometry({ ...sha256, dataBlocks: 2 ** 50 }, 1), { name: 'VerityArgumentError' });
    // 512-byte hash blocks hold 8 sha512 digests: allowed.
    assert.equal(computeGeometry({ ...sha256, algorithm: 'sha512', hashBlockSize: 512, dataBlocks: 100 }, 1).hashesPerBlock, 8);
  });
});

describe('superblock', () => {
  const sb: VeritySuperblock = {
    version: 1,
    hashType: 1,
    uuid: parseUuid('12345678-9abc-def0-1234-56789abcdef0')!,
    algorithm: 'sha256',
    dataBlockSize: 4096,
    hashBlockSize: 4096,
    dataBlocks: 129,
    salt: Buffer.from('00112233445566778899', 'hex'),
  };

  it('encodes the cryptsetup layout and parses back', () => {
    const buf = encodeSuperblock(sb);
    assert.equal(buf.length, 512);
    assert.equal(buf.subarray(0, 8).toString('latin1'), 'verity\0\0');
    assert.equal(buf.readUInt32LE(8), 1);
    assert.equal(buf.readUInt32LE(12), 1);
    assert.equal(buf.subarray(16, 32).toString('hex'), '123456789abcdef0123456789abcdef0');
    assert.equal(buf.subarray(32, 38).toString('latin1'), 'sha256');
    assert.equal(buf.readUInt32LE(64), 4096);
    assert.equal(buf.readBigUInt64LE(72), 129n);
    assert.equal(buf.readUInt16LE(80), 10);
    assert.equal(buf.subarray(88, 98).toString('hex'), '00112233445566778899');
    assert.ok(buf.subarray(98).every((b) => b === 0));
    assert.deepEqual(parseSuperblock(buf, 'l', 0), sb);
  });

  it('validates against the file: overlap and a tree past the end', () => {
    const H = 129 * 4096;
    const g = validateSuperblock(sb, H, H + 4 * 4096, 'l'); // superblock block + top + 2 leaves
    assert.equal(g.hashEndBlock * 4096, H + 4 * 4096);
    assert.throws(() => validateSuperblock(sb, H, H + 4 * 4096 - 1, 'l'), { name: 'VerityTruncatedError' });
    assert.throws(() => validateSuperblock(sb, H - 4096, H + 5 * 4096, 'l'), VeritySuperblockError);
    assert.throws(() => validateSuperblock(sb, H + 100, H + 10 * 4096, 'l'), VeritySuperblockError);
  });

  it('accepts an upper-case algorithm name like cryptsetup does, stores lower case', () => {
    const buf = encodeSuperblock(sb);
    buf.write('SHA256', 32, 'latin1');
    assert.equal(parseSuperblock(buf, 'l', 0).algorithm, 'sha256');
  });
});
