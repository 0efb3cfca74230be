/**
 * Issue 18, the erofs algorithms erofs-utils 1.5 cannot write (DEFLATE, zstd): images laid out by
 * test/erofs-writer.ts, read by our reader and by the kernel's own erofs (which has both), and
 * compared byte for byte; a tampered cluster is a clear error, never wrong bytes.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BufferSource, CorruptImageError, Erofs, erofsTree, FileSource } from '@atomfs/erofs';
import { resolvePath } from '@atomfs/tree';
import { compareSnapshots, makeContent, makeTempDir, processCleanup, snapshotDir, withLoopMount } from './lib/index.js';
import { snapshotTree } from './image-snapshot.js';
import { writeErofsImage, type WriterFile } from './erofs-writer.js';

after(() => processCleanup.run());

const SIZES = [1, 4095, 4096, 4097, 65536 + 123];

function files(): WriterFile[] {
  const out: WriterFile[] = [];
  let seed = 77;
  for (const algorithm of ['deflate', 'zstd'] as const) {
    for (const size of SIZES) {
      out.push({ name: `${algorithm}-text-${size}`, data: makeContent('text', size, seed++), algorithm });
      // Random data does not compress: those clusters are stored plain.
      out.push({ name: `${algorithm}-random-${size}`, data: makeContent('random', size, seed++), algorithm, mode: 0o100600 });
    }
    out.push({ name: `${algorithm}-mixed-200k`, data: makeContent('mixed', 200_000, seed++), algorithm, mtime: 1_234_567_890 });
  }
  return out;
}

test('DEFLATE and zstd clusters read as the kernel reads them', async () => {
  const dir = makeTempDir('erofs-alg', processCleanup);
  const image = join(dir, 'alg.erofs');
  const list = files();
  writeFileSync(image, writeErofsImage(list));
  const fs = new Erofs(new FileSource(image));
  let ours;
  try {
    assert.deepEqual(fs.superblock.features, ['0padding', 'compr_cfgs/big_pcluster']);
    ours = snapshotTree(erofsTree(fs));
    // The source bytes themselves, too.
    for (const f of list) assert.ok(fs.read(resolvePath(erofsTree(fs), `/${f.name}`, true), 0, f.data.length).equals(f.data), f.name);
  } finally {
    fs.close();
  }
  const kernel = await withLoopMount(image, (mp) => snapshotDir(mp), { fsType: 'erofs' });
  assert.deepEqual(compareSnapshots(kernel, ours), []);
});

test('a damaged DEFLATE or zstd cluster is an error naming it, never wrong bytes', () => {
  for (const algorithm of ['deflate', 'zstd'] as const) {
    const data = makeContent('text', 8192, 5);
    const img = writeErofsImage([{ name: 'f', data, algorithm }]);
    // The first data block is the last-but-one of the image (two clusters): flip bytes in its stream.
    const block = img.length - 2 * 4096;
    let errors = 0;
    for (let i = 0; i < 64; i++) {
      const b = Buffer.from(img);
      b[block + 4096 - 1 - i * 7] ^= 0x55;
      try {
        const fs = new Erofs(new BufferSource(b));
        const got = fs.read(resolvePath(erofsTree(fs), '/f', true), 0, data.length);
        // Without verity a flip may still decode (zstd has a checksum, DEFLATE may not notice):
        // what it decodes to must then be exactly the extent's length.
        assert.equal(got.length, data.length);
      } catch (err) {
        assert.ok(err instanceof CorruptImageError, `${algorithm}: ${(err as Error).name}: ${(err as Error).message}`);
        errors++;
      }
    }
    assert.ok(errors > 10, `${algorithm}: ${errors} of 64 flips detected`);
  }
});

test('fragments (whole files and tails in the packed inode) and dedupe (a partly referenced cluster) read as the kernel reads them', async () => {
  const dir = makeTempDir('erofs-frag', processCleanup);
  const image = join(dir, 'frag.erofs');
  const list: WriterFile[] = [
    { name: 'a-source', data: makeContent('text', 4096, 1), algorithm: 'deflate' },
    { name: 'b-prefix', data: makeContent('text', 4096, 1).subarray(0, 1500), algorithm: 'deflate', prefixOf: 'a-source' },
    { name: 'c-whole', data: makeContent('text', 3000, 2), algorithm: 'zstd', fragment: 'whole' },
    { name: 'd-tail', data: makeContent('mixed', 3 * 4096 + 777, 3), algorithm: 'zstd', fragment: 'tail' },
    { name: 'e-whole-big', data: makeContent('random', 9000, 4), algorithm: 'deflate', fragment: 'whole' },
    { name: 'f-tail', data: makeContent('text', 4096 + 1, 5), algorithm: 'deflate', fragment: 'tail' },
  ];
  writeFileSync(image, writeErofsImage(list));
  const fs = new Erofs(new FileSource(image));
  let ours;
  try {
    assert.ok(fs.superblock.features.includes('fragments/dedupe') && fs.superblock.packedNid !== undefined);
    for (const f of list) {
      const ino = resolvePath(erofsTree(fs), `/${f.name}`, true);
      assert.ok(fs.read(ino, 0, f.data.length).equals(f.data), f.name);
      // Reads that start inside a fragment and cross into it.
      assert.ok(fs.read(ino, 1, f.data.length).equals(f.data.subarray(1)), `${f.name} from 1`);
    }
    ours = snapshotTree(erofsTree(fs));
  } finally {
    fs.close();
  }
  const kernel = await withLoopMount(image, (mp) => snapshotDir(mp), { fsType: 'erofs' });
  assert.deepEqual(compareSnapshots(kernel, ours), []);
});

test('long xattr name prefixes (xattr_prefixes), in the image and in the packed inode, read as the kernel reads them', async () => {
  const dir = makeTempDir('erofs-xpfx', processCleanup);
  const xattrs = [
    { name: 'user.atomfs.test.one', value: Buffer.from('1') },
    { name: 'user.atomfs.test.', value: Buffer.from('empty suffix') },
    { name: 'trusted.overlay.opaque', value: Buffer.from('y') },
    { name: 'user.plain', value: Buffer.alloc(300, 7) },
  ];
  for (const withPacked of [false, true]) {
    const image = join(dir, `x${withPacked ? '-packed' : ''}.erofs`);
    const list: WriterFile[] = [
      { name: 'a', data: makeContent('text', 5000, 1), algorithm: 'deflate', xattrs },
      { name: 'b', data: makeContent('text', 100, 2), algorithm: 'zstd', xattrs: xattrs.slice(2), ...(withPacked ? { fragment: 'whole' as const } : {}) },
    ];
    writeFileSync(image, writeErofsImage(list, { longPrefixes: ['user.atomfs.test.', 'trusted.overlay.'] }));
    const fs = new Erofs(new FileSource(image));
    let ours;
    try {
      assert.ok(fs.superblock.features.includes('xattr_prefixes'));
      assert.deepEqual(
        fs.xattrs(resolvePath(erofsTree(fs), '/a', true)).map((x) => [x.name.toString(), x.value.toString('hex')]),
        xattrs.map((x) => [x.name, x.value.toString('hex')]),
      );
      ours = snapshotTree(erofsTree(fs));
    } finally {
      fs.close();
    }
    const kernel = await withLoopMount(image, (mp) => snapshotDir(mp), { fsType: 'erofs' });
    assert.equal(Object.keys(kernel.get('/a')!.xattrs).length, 4, 'the kernel shows all four');
    assert.deepEqual(compareSnapshots(kernel, ours), [], withPacked ? 'prefixes in the packed inode' : 'prefixes in the image');
  }
});

test('an extent that starts inside a logical cluster, stored interlaced, reads as the kernel reads it', async () => {
  const dir = makeTempDir('erofs-ilv', processCleanup);
  const image = join(dir, 'ilv.erofs');
  const list: WriterFile[] = [
    { name: 'deflate', data: makeContent('text', 8000, 11), algorithm: 'deflate', interlaced: true },
    { name: 'zstd', data: makeContent('text', 8192, 12), algorithm: 'zstd', interlaced: true },
  ];
  writeFileSync(image, writeErofsImage(list));
  const fs = new Erofs(new FileSource(image));
  let ours;
  try {
    for (const f of list) {
      const ino = resolvePath(erofsTree(fs), `/${f.name}`, true);
      assert.ok(fs.read(ino, 0, f.data.length).equals(f.data), f.name);
      assert.ok(fs.read(ino, 7000, 100).equals(f.data.subarray(7000, 7100)), `${f.name} inside the plain extent`);
    }
    ours = snapshotTree(erofsTree(fs));
  } finally {
    fs.close();
  }
  const kernel = await withLoopMount(image, (mp) => snapshotDir(mp), { fsType: 'erofs' });
  assert.deepEqual(compareSnapshots(kernel, ours), []);
});

test('a stored extent reaching past its cluster into the next logical cluster is EIO, as on the kernel', async () => {
  const dir = makeTempDir('erofs-ilv3', processCleanup);
  const image = join(dir, 'ilv3.erofs');
  const data = makeContent('text', 10000, 12);
  writeFileSync(image, writeErofsImage([{ name: 'f', data, algorithm: 'deflate', interlaced: true }]));
  const fs = new Erofs(new FileSource(image));
  try {
    const ino = resolvePath(erofsTree(fs), '/f', true);
    assert.ok(fs.read(ino, 0, 8192).equals(data.subarray(0, 8192)), 'the first two logical clusters read');
    assert.throws(() => fs.read(ino, 8192, 100), CorruptImageError);
  } finally {
    fs.close();
  }
  await withLoopMount(
    image,
    (mp) => {
      const fd = openSync(join(mp, 'f'), 'r');
      try {
        const b = Buffer.alloc(8192);
        assert.equal(readSync(fd, b, 0, 8192, 0), 8192);
        assert.ok(b.equals(data.subarray(0, 8192)));
        assert.throws(() => readSync(fd, b, 0, 100, 8192), /EUCLEAN|-117|Structure needs cleaning/);
      } finally {
        closeSync(fd);
      }
    },
    { fsType: 'erofs' },
  );
});
