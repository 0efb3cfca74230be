/**
 * Extraction with blocks decoded ahead on a second thread (ExtractOptions.parallel, used for
 * images of 16 MiB and more): the output must equal `unsquashfs -d` and the single-threaded
 * extraction, including sparse files, hard links and tails in fragment blocks, and a damaged data
 * or fragment block must fail the extraction with the same error either way.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanup, prng, randomBytes, tempDir } from '@atomfs/testkit';
import { createDecompressor, extract, SquashFS } from '../src/index.js';
import { mksquashfs } from './helpers.js';

/** Every entry below `root`: type, mode, size, mtime, content hash, and which entries share an inode. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const inodes = new Map<number, string>();
  const visit = (rel: string): void => {
    const p = join(root, rel);
    const st = lstatSync(p);
    let what = `${st.mode.toString(8)} ${st.mtimeMs}`;
    if (st.isFile()) {
      what += ` ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
      const first = inodes.get(st.ino);
      if (first !== undefined) what += ` link-of ${first}`;
      else inodes.set(st.ino, rel);
    } else if (st.isSymbolicLink()) what += ` -> ${readlinkSync(p)}`;
    out.set(rel, what);
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) visit(join(rel, n));
  };
  visit('.');
  return out;
}

describe('extract with blocks decoded ahead', () => {
  let dir: string;
  let image: string;
  let reference: Map<string, string>;

  before(() => {
    dir = tempDir('xpar');
    const src = join(dir, 'src');
    mkdirSync(join(src, 'big/nested'), { recursive: true });
    const rand = prng(11);
    // Large files (several blocks each, poorly compressible so the image passes 16 MiB), one of
    // them hard-linked, one sparse with data after a hole, and many small ones in between.
    const text = Buffer.from('compressible text, so some blocks are zstd frames\n'.repeat(20_000));
    for (let i = 0; i < 3; i++) writeFileSync(join(src, 'big', `f${i}.bin`), Buffer.concat([randomBytes(rand, 5 << 20), text, Buffer.alloc(123_457, i + 1)]));
    linkSync(join(src, 'big/f1.bin'), join(src, 'big/nested/f1-link.bin'));
    const fd = openSync(join(src, 'big/sparse.bin'), 'w');
    writeSync(fd, randomBytes(rand, 300_000), 0, 300_000, 0);
    writeSync(fd, randomBytes(rand, 200_000), 0, 200_000, 8 << 20);
    closeSync(fd);
    // Small files of up to ~40 kB: their tails fill many fragment blocks, which the second thread
    // decodes too (runs of tails sharing a fragment block, interleaved with the big files' tails).
    for (let i = 0; i < 300; i++) writeFileSync(join(src, `small-${i}`), `small file ${i}\n`.repeat((i * 263) % 3000));
    writeFileSync(join(src, 'last.bin'), randomBytes(rand, 3 << 20));
    image = join(dir, 'img.sqfs');
    mksquashfs(src, image, ['-comp', 'zstd']);
    assert.ok(lstatSync(image).size >= 16 << 20, 'image large enough for the second thread');
    const ref = join(dir, 'unsquashfs');
    execFileSync('unsquashfs', ['-q', '-n', '-d', ref, image], { stdio: 'ignore' });
    reference = snapshot(ref);
  });
  after(() => cleanup(dir));

  for (const parallel of [true, false]) {
    test(`parallel: ${parallel} equals unsquashfs -d`, async () => {
      const out = join(dir, `out-${parallel}`);
      const fs = SquashFS.open(image);
      try {
        const r = await extract(fs, out, { parallel });
        assert.equal(r.hardlinks, 1);
      } finally {
        fs.close();
      }
      const got = snapshot(out);
      assert.deepEqual([...got.keys()], [...reference.keys()]);
      for (const [k, v] of reference) assert.equal(got.get(k), v, k);
      // Holes stay holes: the 8 MiB file with 500 kB of data occupies far less than its size.
      assert.ok(lstatSync(join(out, 'big/sparse.bin')).blocks * 512 < 2 << 20, 'sparse.bin is sparse');
    });
  }

  /** Extracts `bytes` as an image with and without the second thread; both error messages. */
  async function failures(bytes: Buffer, name: string): Promise<string[]> {
    const bad = join(dir, `${name}.sqfs`);
    writeFileSync(bad, bytes);
    const messages: string[] = [];
    for (const parallel of [true, false]) {
      const fs = SquashFS.open(bad);
      try {
        await assert.rejects(extract(fs, join(dir, `${name}-out-${parallel}`), { parallel }), (err: Error) => {
          messages.push(`${err.name}: ${err.message}`);
          return true;
        });
      } finally {
        fs.close();
      }
    }
    return messages;
  }

  const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

  test('a damaged data block fails the extraction with the same error on both paths', async () => {
    const bytes = readFileSync(image);
    // Break the magic of a zstd frame (a compressed data block) inside the large files' data.
    const at = bytes.indexOf(ZSTD_MAGIC, 1 << 20);
    assert.ok(at > 0 && at < 15 << 20, `a compressed block of a large file at ${at}`);
    bytes[at + 3] ^= 0xff;
    const messages = await failures(bytes, 'bad-data');
    assert.equal(messages[0], messages[1]);
    assert.match(messages[0]!, /zstd|decompress|corrupt/i);
  });

  test('a damaged fragment block fails the extraction with the same error on both paths', async () => {
    const bytes = readFileSync(image);
    // Find a frame holding small files' tails: the one that decodes to "small file 2…" text
    // (the zstd decoder only locates it; the check is that both paths fail alike).
    // A squashfs block is exactly one frame: try each magic up to the next one.
    const zstd = createDecompressor(6);
    let at = -1;
    for (let p = bytes.indexOf(ZSTD_MAGIC); p >= 0 && at < 0; p = bytes.indexOf(ZSTD_MAGIC, p + 1)) {
      const next = bytes.indexOf(ZSTD_MAGIC, p + 1);
      try {
        if (zstd.decompress(bytes.subarray(p, next < 0 ? bytes.length : next), 128 << 10).includes('small file 2')) at = p;
      } catch {
        // not a whole frame (another block's bytes follow it): keep looking
      }
    }
    assert.ok(at > 0, 'a fragment block with small files found');
    bytes[at + 3] ^= 0xff;
    const messages = await failures(bytes, 'bad-fragment');
    assert.equal(messages[0], messages[1]);
    assert.match(messages[0]!, /zstd|decompress|corrupt/i);
  });
});
