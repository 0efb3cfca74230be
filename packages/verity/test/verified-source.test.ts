import assert from 'node:assert/strict';
import { copyFileSync, openSync, closeSync, writeSync, readFileSync, truncateSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BufferByteSource,
  FileByteSource,
  RootHashMismatchError,
  VerityArgumentError,
  VerityError,
  VerityMismatchError,
  VeritySuperblockError,
  VerityTruncatedError,
  hashOffsetFor,
  openVerified,
  shutdownHashWorkers,
  verifyAll,
  verifyAllSync,
} from '../src/index.js';
import { cleanup, prng, tempDir } from '@atomfs/testkit';
import { requireTool, veritysetupFormat, veritysetupVerify, writeDataFile } from './helpers.js';

/**
 * VerifiedSource against images made by veritysetup: every block reads back as the original
 * bytes, verifyAll and `veritysetup verify` agree, and every way to open a bad image fails with a
 * typed error at open time.
 */

interface Image {
  name: string;
  path: string;
  H: number;
  dataBytes: number;
  rootHash: string;
}

function flipRoot(hex: string): string {
  const b = Buffer.from(hex, 'hex');
  b[5]! ^= 0x10;
  return b.toString('hex');
}

describe('VerifiedSource on veritysetup images', () => {
  let dir: string;
  const images: Image[] = [];

  before(() => {
    requireTool('veritysetup');
    dir = tempDir('source');
    const specs: Array<{ name: string; bytes: number; args?: string[] }> = [
      { name: '1 block (0 levels)', bytes: 4096 },
      { name: '128 blocks (1 level)', bytes: 128 * 4096 },
      { name: '129 blocks (2 levels)', bytes: 129 * 4096 },
      { name: '20000 blocks (3 levels)', bytes: 20000 * 4096 },
      { name: 'unaligned squashfs-like size', bytes: 777 * 4096 - 999 },
      { name: 'hash type 0, sha1', bytes: 3000 * 4096, args: ['--format=0', '--hash=sha1'] },
      { name: 'empty salt', bytes: 400 * 4096, args: ['--salt=-'] },
    ];
    for (const s of specs) {
      const path = join(dir, `${images.length}.img`);
      const H = hashOffsetFor(s.bytes);
      writeDataFile(path, s.name, s.bytes);
      truncateSync(path, H);
      const vs = veritysetupFormat(path, H, H / 4096, s.args ?? []);
      images.push({ name: s.name, path, H, dataBytes: H, rootHash: vs.rootHash });
    }
  });
  after(() => cleanup(dir));

  it('serves every block, and random unaligned multi-block reads, as the original bytes', () => {
    for (const img of images) {
      const plain = new FileByteSource(img.path);
      const vs = openVerified(new FileByteSource(img.path), { hashOffset: img.H, rootHash: img.rootHash, label: img.name });
      try {
        assert.equal(vs.size, img.dataBytes, img.name);
        for (let p = 0; p < vs.size; p += 4096) assert.ok(vs.read(p, 4096).equals(plain.read(p, 4096)), `${img.name} block ${p / 4096}`);
        assert.ok(vs.stats.dataBlocksVerified >= vs.size / 4096);
        const rand = prng(7);
        for (let i = 0; i < 300; i++) {
          const pos = rand() % vs.size;
          const len = Math.min(vs.size - pos, rand() % (300 * 1024));
          assert.ok(vs.read(pos, len).equals(plain.read(pos, len)), `${img.name} read ${len}@${pos}`);
        }
        assert.equal(vs.read(vs.size, 0).length, 0);
        assert.throws(() => vs.read(vs.size - 1, 2), VerityArgumentError);
        assert.throws(() => vs.read(-1, 1), VerityArgumentError);
      } finally {
        vs.close();
        plain.close();
      }
    }
  });

  it('works with the smallest caches (hash cache below one chain, no data cache)', () => {
    const img = images[3]!;
    const plain = new FileByteSource(img.path);
    const vs = openVerified(new FileByteSource(img.path), {
      hashOffset: img.H,
      rootHash: img.rootHash,
      label: img.name,
      hashCacheBytes: 0,
      dataCacheBlocks: 0,
      maxRunBlocks: 3,
    });
    try {
      const rand = prng(99);
      for (let i = 0; i < 500; i++) {
        const pos = rand() % vs.size;
        const len = Math.min(vs.size - pos, 1 + (rand() % 70000));
        assert.ok(vs.read(pos, len).equals(plain.read(pos, len)));
      }
    } finally {
      vs.close();
      plain.close();
    }
  });

  it('verifyAll (sync and threaded) and veritysetup verify accept every image', async () => {
    for (const img of images) {
      const src = new FileByteSource(img.path);
      try {
        let progress = 0;
        const a = verifyAllSync(src, { hashOffset: img.H, rootHash: img.rootHash, label: img.name, onProgress: (d) => (progress = d) });
        assert.equal(a.ok, true);
        assert.equal(a.computedRootHash, img.rootHash);
        assert.ok(progress >= img.dataBytes);
        const b = await verifyAll(src, { hashOffset: img.H, rootHash: img.rootHash, label: img.name, threads: 2, parallelMinBytes: 0 });
        assert.equal(b.ok, true);
        // By path: the same, the file opened and closed inside.
        assert.equal((await verifyAll(img.path, { hashOffset: img.H, rootHash: img.rootHash, threads: 2, parallelMinBytes: 0 })).ok, true);
        assert.equal(verifyAllSync(img.path, { hashOffset: img.H, rootHash: img.rootHash }).ok, true);
        // A non-file source takes the calling-thread path.
        if (img.dataBytes < 16 << 20) {
          const c = await verifyAll(new BufferByteSource(readFileSync(img.path)), { hashOffset: img.H, rootHash: img.rootHash });
          assert.equal(c.ok, true);
        }
      } finally {
        src.close();
      }
      assert.equal(veritysetupVerify(img.path, img.H, img.rootHash), true, img.name);
    }
  });

  it('pooled hash workers survive aborted jobs: bad, good, bad, good on the same workers', async () => {
    const img = images[3]!; // 20000 blocks
    const bad = join(dir, 'pool-bad.img');
    copyFileSync(img.path, bad);
    const fd = openSync(bad, 'r+');
    writeSync(fd, Buffer.from('x'), 0, 1, 12 * 4096 + 7);
    closeSync(fd);
    for (let round = 0; round < 3; round++) {
      const b = new FileByteSource(bad);
      try {
        await assert.rejects(verifyAll(b, { hashOffset: img.H, rootHash: img.rootHash, threads: 3, parallelMinBytes: 0 }), (err: unknown) => {
          assert.ok(err instanceof VerityMismatchError);
          assert.equal(err.index, 12);
          return true;
        });
      } finally {
        b.close();
      }
      const g = new FileByteSource(img.path);
      try {
        const r = await verifyAll(g, { hashOffset: img.H, rootHash: img.rootHash, threads: 3, parallelMinBytes: 0 });
        assert.equal(r.ok, true);
      } finally {
        g.close();
      }
    }
    await shutdownHashWorkers();
  });

  it('a wrong root hash fails at open, in verifyAll and in veritysetup verify', async () => {
    for (const img of images) {
      const wrong = flipRoot(img.rootHash);
      const src = new FileByteSource(img.path);
      try {
        assert.throws(() => openVerified(src, { hashOffset: img.H, rootHash: wrong, label: 'sha256:abc' }), (err: unknown) => {
          assert.ok(err instanceof RootHashMismatchError);
          assert.match(err.message, /^verity: sha256:abc: root hash mismatch for block at offset \d+: expected [0-9a-f]+, computed [0-9a-f]+$/);
          return true;
        });
        await assert.rejects(verifyAll(src, { hashOffset: img.H, rootHash: wrong }), RootHashMismatchError);
        assert.throws(() => openVerified(src, { hashOffset: img.H, rootHash: 'xyz', label: 'l' }), VerityArgumentError);
        assert.throws(() => openVerified(src, { hashOffset: img.H, rootHash: 'abcd', label: 'l' }), VerityArgumentError);
        assert.throws(
          () => openVerified(src, { hashOffset: img.H, rootHash: img.rootHash, label: 'l', expectedDataBlocks: img.H / 4096 + 1 }),
          VeritySuperblockError,
        );
      } finally {
        src.close();
      }
      assert.equal(veritysetupVerify(img.path, img.H, wrong), false);
    }
  });

  it('a truncated file fails with VerityTruncatedError (veritysetup verify fails too)', async () => {
    const img = images[3]!;
    const size = statSync(img.path).size;
    for (const cut of [size - 1, size - 4096, img.H + 4096 + 100, img.H + 512, img.H + 100, img.H - 4096]) {
      const p = join(dir, 'truncated.img');
      copyFileSync(img.path, p);
      truncateSync(p, cut);
      const src = new FileByteSource(p);
      try {
        assert.throws(() => openVerified(src, { hashOffset: img.H, rootHash: img.rootHash, label: 'cut' }), VerityTruncatedError, `cut at ${cut}`);
        await assert.rejects(verifyAll(src, { hashOffset: img.H, rootHash: img.rootHash }), VerityTruncatedError);
      } finally {
        src.close();
      }
      assert.equal(veritysetupVerify(p, img.H, img.rootHash), false, `veritysetup on cut at ${cut}`);
    }
  });

  it('inconsistent superblocks fail with VeritySuperblockError naming layer and offset', () => {
    const img = images[2]!; // 129 blocks
    const orig = readFileSync(img.path);
    const edits: Array<[string, (b: Buffer) => void]> = [
      ['signature', (b) => (b[img.H] = 0x56)],
      ['version', (b) => b.writeUInt32LE(2, img.H + 8)],
      ['hash type', (b) => b.writeUInt32LE(2, img.H + 12)],
      ['algorithm', (b) => b.write('nope\0', img.H + 32, 'latin1')],
      ['data block size not a power of 2', (b) => b.writeUInt32LE(3000, img.H + 64)],
      ['hash block size too large', (b) => b.writeUInt32LE(1 << 20, img.H + 68)],
      ['hash block size too small', (b) => b.writeUInt32LE(256, img.H + 68)],
      ['data blocks overlap the hash area', (b) => b.writeBigUInt64LE(130n, img.H + 72)],
      ['data blocks zero', (b) => b.writeBigUInt64LE(0n, img.H + 72)],
      ['data blocks huge', (b) => b.writeBigUInt64LE(1n << 60n, img.H + 72)],
      ['salt size', (b) => b.writeUInt16LE(257, img.H + 80)],
    ];
    for (const [what, edit] of edits) {
      const b = Buffer.from(orig);
      edit(b);
      assert.throws(
        () => openVerified(new BufferByteSource(b), { hashOffset: img.H, rootHash: img.rootHash, label: 'sha256:layer' }),
        (err: unknown) => {
          assert.ok(err instanceof VeritySuperblockError, `${what}: ${String(err)}`);
          assert.equal(err.offset, img.H);
          assert.ok(!err.message.includes('\n'));
          assert.ok(err.message.startsWith(`verity: sha256:layer: superblock at offset ${img.H}: `), err.message);
          return true;
        },
      );
    }
    // Superblock offset not a multiple of 512, or past the end of the file.
    assert.throws(() => openVerified(new BufferByteSource(orig), { hashOffset: img.H + 100, rootHash: img.rootHash, label: 'x' }), VerityError);
    assert.throws(() => openVerified(new BufferByteSource(orig), { hashOffset: orig.length + 4096, rootHash: img.rootHash, label: 'x' }), VerityTruncatedError);
    // A layer without verity data: the file ends at H.
    assert.throws(
      () => openVerified(new BufferByteSource(orig.subarray(0, img.H)), { hashOffset: img.H, rootHash: img.rootHash, label: 'x' }),
      (err: unknown) => err instanceof VeritySuperblockError && /no verity data/.test(err.message),
    );
    // Pinning the algorithm.
    assert.throws(
      () => openVerified(new BufferByteSource(orig), { hashOffset: img.H, rootHash: img.rootHash, label: 'x', algorithms: ['sha512'] }),
      VeritySuperblockError,
    );
    openVerified(new BufferByteSource(orig), { hashOffset: img.H, rootHash: img.rootHash, label: 'x', algorithms: ['SHA256'] }).close();
    // Labels cannot break the one-line rule.
    assert.throws(
      () => openVerified(new BufferByteSource(orig), { hashOffset: 0, rootHash: img.rootHash, label: 'evil\nlabel' }),
      (err: unknown) => err instanceof VerityError && !err.message.includes('\n') && err.message.includes('evil?label'),
    );
    // No superblock at all where the caller says (e.g. a squashfs without verity data).
    assert.throws(() => openVerified(new BufferByteSource(orig), { hashOffset: 0, rootHash: img.rootHash, label: 'x' }), VeritySuperblockError);
  });

  it('re-verifies a data block on every fill: bytes changed on disk after a good read are refused', () => {
    const img = images[1]!; // 128 blocks, 1 level
    const p = join(dir, 'toctou.img');
    copyFileSync(img.path, p);
    const vs = openVerified(new FileByteSource(p), { hashOffset: img.H, rootHash: img.rootHash, label: 'toctou', dataCacheBlocks: 0 });
    try {
      const good = vs.read(40 * 4096, 4096);
      const before = vs.stats.dataBlocksVerified;
      assert.ok(vs.read(40 * 4096, 4096).equals(good));
      assert.equal(vs.stats.dataBlocksVerified, before + 1);
      const fd = openSync(p, 'r+');
      writeSync(fd, Buffer.from([good[100]! ^ 1]), 0, 1, 40 * 4096 + 100);
      closeSync(fd);
      assert.throws(() => vs.read(40 * 4096 + 50, 10), (err: unknown) => {
        assert.ok(err instanceof VerityMismatchError);
        assert.equal(err.level, -1);
        assert.equal(err.index, 40);
        assert.equal(err.offset, 40 * 4096);
        assert.equal(err.message, 'verity: toctou: data block 40 at offset 163840 does not match its digest in hash level 0');
        return true;
      });
      // A read spanning the bad block returns nothing, even its good neighbours.
      assert.throws(() => vs.read(39 * 4096, 3 * 4096), VerityMismatchError);
      assert.ok(vs.read(39 * 4096, 4096).equals(readFileSync(img.path).subarray(39 * 4096, 40 * 4096)));
    } finally {
      vs.close();
    }
  });
});
