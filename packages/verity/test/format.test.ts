import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, before, after } from 'node:test';
import { cleanup, tempDir } from '@atomfs/testkit';
import { FileByteSource, formatVerity, formatVeritySync, hashOffsetFor, readSuperblock, verifyAll } from '../src/index.js';
import { filesEqual, requireTool, seededBytes, veritysetupFormat, veritysetupVerify, writeDataFile } from './helpers.js';

/**
 * formatVerity must write byte for byte what `veritysetup format` writes (given the same salt and
 * uuid) and report the same root hash, for 0, 1, 2 and 3 tree levels and for the variants the
 * superblock can describe (hash type 0, other algorithms, block sizes, empty salt).
 */

interface Case {
  name: string;
  /** Bytes of 'squashfs' data; H is this rounded up to 4096 and the file is zero-padded to H. */
  bytes: number;
  /** Extra veritysetup format arguments. */
  args: string[];
  /** Data block size in bytes (for --data-blocks). */
  dbs?: number;
  async?: boolean;
}

const cases: Case[] = [
  { name: '1 block, 0 levels', bytes: 4096, args: [] },
  { name: '128 blocks, 1 level', bytes: 128 * 4096, args: [] },
  { name: '129 blocks, 2 levels', bytes: 129 * 4096, args: [], async: true },
  { name: '20000 blocks, 3 levels', bytes: 20000 * 4096, args: [], async: true },
  { name: '20000 blocks, 3 levels, hash type 0', bytes: 20000 * 4096, args: ['--format=0'] },
  { name: 'squashfs-like unaligned size', bytes: 300 * 4096 - 1234, args: [] },
  { name: 'given salt (odd length) and uuid', bytes: 129 * 4096, args: ['--salt=0102030405060708090a0b0c0d0e0f1011', '--uuid=12345678-9abc-def0-1234-56789abcdef0'] },
  { name: 'empty salt', bytes: 200 * 4096, args: ['--salt=-'], async: true },
  { name: 'hash type 0', bytes: 129 * 4096, args: ['--format=0'] },
  { name: 'hash type 0, sha1 (packed 20-byte digests)', bytes: 1000 * 4096, args: ['--format=0', '--hash=sha1'], async: true },
  { name: 'hash type 1, sha1 (digests padded to 32)', bytes: 1000 * 4096, args: ['--hash=sha1'] },
  { name: 'sha512', bytes: 1000 * 4096, args: ['--hash=sha512'], async: true },
  { name: '1 KiB data blocks, 512-byte hash blocks', bytes: 3000 * 1024, args: ['--data-block-size=1024', '--hash-block-size=512'], dbs: 1024, async: true },
  { name: 'max salt (256 bytes)', bytes: 130 * 4096, args: [`--salt=${'ab'.repeat(256)}`] },
];

function optionValue(args: string[], name: string): string | undefined {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a?.slice(name.length + 3);
}

describe('formatVerity matches veritysetup format byte for byte', () => {
  let dir: string;
  before(() => {
    requireTool('veritysetup');
    dir = tempDir('format');
  });
  after(() => cleanup(dir));

  for (const c of cases) {
    it(c.name, async () => {
      const dbs = c.dbs ?? 4096;
      const theirs = join(dir, 'theirs.img');
      const ours = join(dir, 'ours.img');
      const H = hashOffsetFor(c.bytes);
      writeDataFile(theirs, c.name, c.bytes);
      truncateSync(theirs, H); // mksquashfs pads to 4 KiB the same way
      copyFileSync(theirs, ours);
      const dataBlocks = H / dbs;

      const vs = veritysetupFormat(theirs, H, dataBlocks, c.args);
      const hashType = Number(optionValue(c.args, 'format') ?? '1') as 0 | 1;
      const options = {
        hashOffset: H,
        dataBlocks,
        salt: vs.salt === '-' ? Buffer.alloc(0) : Buffer.from(vs.salt, 'hex'),
        uuid: vs.uuid,
        hashType,
        algorithm: optionValue(c.args, 'hash') ?? 'sha256',
        dataBlockSize: dbs,
        hashBlockSize: Number(optionValue(c.args, 'hash-block-size') ?? '4096'),
      };
      const result = c.async ? await formatVerity(ours, { ...options, threads: 2, parallelMinBytes: 0 }) : formatVeritySync(ours, options);

      assert.equal(result.rootHash, vs.rootHash, 'root hash');
      assert.equal(result.uuid, vs.uuid);
      assert.equal(statSync(ours).size, statSync(theirs).size, 'file size');
      assert.ok(filesEqual(ours, theirs), 'files differ');

      // Our full verification accepts veritysetup's image, veritysetup accepts ours.
      const src = new FileByteSource(theirs);
      try {
        const r = await verifyAll(src, { hashOffset: H, rootHash: vs.rootHash, label: c.name, threads: 2, parallelMinBytes: 0 });
        assert.equal(r.ok, true);
        assert.equal(r.computedRootHash, vs.rootHash);
        const { superblock, geometry } = readSuperblock(src, H, c.name);
        assert.equal(superblock.dataBlocks, vs.dataBlocks);
        assert.equal(superblock.hashType, vs.hashType);
        assert.equal(geometry.hashEndBlock * geometry.hashBlockSize, statSync(theirs).size);
      } finally {
        src.close();
      }
      assert.equal(veritysetupVerify(ours, H, result.rootHash), true);
    });
  }

  it('levels 0..3 for 1, 128, 129, 20000 blocks', () => {
    const levels = [1, 128, 129, 20000].map((n) => {
      const p = join(dir, `l${n}.img`);
      writeDataFile(p, `levels${n}`, n * 4096);
      const r = formatVeritySync(p, { hashOffset: n * 4096 });
      return r.geometry.levels;
    });
    assert.deepEqual(levels, [0, 1, 2, 3]);
  });

  it('defaults: 32 random bytes of salt, random uuid, data blocks = H/4096, sha256, type 1', () => {
    const p = join(dir, 'defaults.img');
    writeFileSync(p, seededBytes('defaults', 50 * 4096));
    const a = formatVeritySync(p, { hashOffset: 50 * 4096 });
    assert.equal(a.salt.length, 64);
    assert.equal(a.superblock.dataBlocks, 50);
    assert.equal(a.superblock.algorithm, 'sha256');
    assert.equal(a.superblock.hashType, 1);
    const b = formatVeritySync(p, { hashOffset: 50 * 4096 });
    assert.notEqual(a.salt, b.salt);
    assert.notEqual(a.uuid, b.uuid);
    assert.notEqual(a.rootHash, b.rootHash);
    assert.equal(veritysetupVerify(p, 50 * 4096, b.rootHash), true);
    assert.equal(veritysetupVerify(p, 50 * 4096, a.rootHash), false);
  });

  it('a real mksquashfs image', async () => {
    requireTool('mksquashfs');
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    writeFileSync(join(tree, 'random.bin'), seededBytes('sq', 700_000));
    writeFileSync(join(tree, 'sub', 'text.txt'), 'hello verity\n'.repeat(10_000));
    const theirs = join(dir, 'layer.squashfs');
    const ours = join(dir, 'layer-ours.squashfs');
    execFileSync('mksquashfs', [tree, theirs, '-noappend', '-quiet', '-no-progress'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const img = readFileSync(theirs);
    const bytesUsed = Number(img.readBigUInt64LE(40));
    const H = hashOffsetFor(bytesUsed);
    assert.equal(img.length, H, 'mksquashfs pads to 4 KiB');
    copyFileSync(theirs, ours);
    const vs = veritysetupFormat(theirs, H, H / 4096);
    const r = await formatVerity(ours, { hashOffset: H, salt: vs.salt, uuid: vs.uuid });
    assert.equal(r.rootHash, vs.rootHash);
    assert.ok(readFileSync(ours).equals(readFileSync(theirs)));
  });

  it('refuses bad arguments with typed errors', () => {
    const p = join(dir, 'bad.img');
    writeFileSync(p, seededBytes('bad', 8 * 4096));
    assert.throws(() => formatVeritySync(p, { hashOffset: 100 }), { name: 'VerityArgumentError' });
    assert.throws(() => formatVeritySync(p, { hashOffset: 4096, dataBlocks: 2 }), { name: 'VerityArgumentError' });
    assert.throws(() => formatVeritySync(p, { hashOffset: 16 * 4096 }), { name: 'VerityTruncatedError' });
    assert.throws(() => formatVeritySync(p, { hashOffset: 4096, salt: Buffer.alloc(257) }), { name: 'VerityArgumentError' });
    assert.throws(() => formatVeritySync(p, { hashOffset: 4096, algorithm: 'nope' }), { name: 'VerityArgumentError' });
    assert.throws(() => formatVeritySync(p, { hashOffset: 4096, uuid: 'not-a-uuid' }), { name: 'VerityArgumentError' });
  });
});
