import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanup, smallTree, tempDir } from '@atomfs/testkit';
import { BufferSource, CorruptImageError, Erofs, UnsupportedImageError } from '../src/index.js';
import { mkfsErofs } from './helpers.js';

/** Bad superblocks get one clear error naming what is wrong (checked against real mkfs.erofs images). */
let dir: string;
let withCrc: Buffer;
let noCrc: Buffer;

before(() => {
  dir = tempDir('erofs-sb');
  smallTree(join(dir, 'src'), 'erofs');
  mkfsErofs(join(dir, 'src'), join(dir, 'crc.erofs'), ['-zlz4hc']);
  mkfsErofs(join(dir, 'src'), join(dir, 'nocrc.erofs'), ['-Enosbcrc']);
  withCrc = readFileSync(join(dir, 'crc.erofs'));
  noCrc = readFileSync(join(dir, 'nocrc.erofs'));
});
after(() => cleanup(dir));

const open = (b: Buffer) => new Erofs(new BufferSource(b));

test('real images open; features are named', () => {
  assert.deepEqual(open(withCrc).superblock.features, ['sb_csum', 'mtime', '0padding']);
  assert.ok(!open(noCrc).superblock.features.includes('sb_csum'));
});

test('unknown incompat features are refused by name', () => {
  for (const [bit, name] of [[0x80, '48bit'], [0x100, 'metabox'], [0x8000, 'incompat 0x8000']] as const) {
    const b = Buffer.from(noCrc);
    b.writeUInt32LE(b.readUInt32LE(1024 + 80) | bit, 1024 + 80);
    assert.throws(() => open(b), (e: Error) => e instanceof UnsupportedImageError && e.message.includes(name) && /does not implement/.test(e.message), name);
  }
});

test('a superblock whose checksum does not match is refused', () => {
  const b = Buffer.from(withCrc);
  b[1024 + 16] ^= 1; // inode count
  assert.throws(() => open(b), (e: Error) => e instanceof CorruptImageError && /superblock checksum/.test(e.message));
});

test('no magic, a bad block size, a truncated image', () => {
  const b = Buffer.from(noCrc);
  b[1024] ^= 0xff;
  assert.throws(() => open(b), /no erofs magic/);
  const c = Buffer.from(noCrc);
  c[1024 + 12] = 30;
  assert.throws(() => open(c), /block size 2\^30 is out of range/);
  assert.throws(() => open(noCrc.subarray(0, 1100)), /too small for an erofs image/);
});
