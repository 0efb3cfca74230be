/**
 * Directory lookups compare names where they lie in the metadata, across metadata block
 * boundaries. Checked against the directory mksquashfs was given: one directory of 3,000 byte
 * names (1 to 255 bytes, shared prefixes, bytes above 0x7f) whose listing spans many 8 KiB
 * blocks and has a directory index; every name is found with its own file, and names next to
 * them (one byte more, one byte less, a last byte changed) are found exactly when the source
 * holds them.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanup, prng, tempDir } from '@atomfs/testkit';
import { FileSource, SquashFS } from '../src/index.js';
import { mksquashfs } from './helpers.js';

let dir: string;
let src: string;
let image: SquashFS;
let names: Buffer[];

/** A name of 1..255 bytes: no "/" or NUL, never "." or ".."; many share a long prefix. */
function randomName(rand: () => number): Buffer {
  const prefix = rand() % 3 === 0 ? Buffer.from('shared-prefix-'.repeat(1 + (rand() % 8))) : Buffer.alloc(0);
  const n = 1 + (rand() % (255 - prefix.length));
  const tail = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    let b = 0;
    while (b === 0 || b === 0x2f) b = rand() & 0xff;
    tail[i] = b;
  }
  const name = Buffer.concat([prefix, tail]).subarray(0, 255);
  return name.equals(Buffer.from('.')) || name.equals(Buffer.from('..')) ? Buffer.from('dot') : name;
}

const sourcePath = (name: Buffer): Buffer => Buffer.concat([Buffer.from(`${src}/`), name]);

before(() => {
  dir = tempDir('lookup');
  src = join(dir, 'src');
  mkdirSync(src);
  const rand = prng(7);
  for (let i = 0; i < 3000; i++) writeFileSync(sourcePath(randomName(rand)), String(i));
  names = readdirSync(src, { encoding: 'buffer' });
  const out = join(dir, 'img.sqfs');
  mksquashfs(src, out, ['-comp', 'gzip']);
  image = new SquashFS(new FileSource(out));
});

after(() => {
  image?.close();
  cleanup(dir);
});

test('the listing spans several metadata blocks and is what mksquashfs was given', () => {
  const root = image.root();
  assert.ok(root.kind === 'dir' && root.fileSize > 4 * 8192, `listing of ${root.kind === 'dir' ? root.fileSize : 0} bytes`);
  const listed = image.readdir(root).map((e) => e.name);
  assert.deepEqual(listed, [...names].sort(Buffer.compare));
});

test('every name is found, with its own file', () => {
  const root = image.root();
  for (const name of names) {
    const inode = image.lookup(root, name);
    assert.ok(inode !== undefined, `${name.toString('hex')} not found`);
    assert.equal(inode.kind === 'file' ? inode.fileSize : -1, statSync(sourcePath(name)).size, name.toString('hex'));
  }
});

test('names next to the real ones are found exactly when the source has them', () => {
  const root = image.root();
  let checked = 0;
  for (const name of names.slice(0, 600)) {
    const near = [Buffer.concat([name, Buffer.from('x')]), name.subarray(0, name.length - 1), Buffer.concat([name.subarray(0, -1), Buffer.from([name[name.length - 1]! ^ 1 || 1])])];
    for (const n of near) {
      if (n.length === 0 || n.length > 255 || n.includes(0x2f) || n.includes(0) || n.equals(Buffer.from('.')) || n.equals(Buffer.from('..'))) continue;
      assert.equal(image.lookup(root, n) !== undefined, existsSync(sourcePath(n)), n.toString('hex'));
      checked++;
    }
  }
  assert.ok(checked > 1500, `${checked} neighbours checked`);
});

test('names no listing can hold are not found', () => {
  const root = image.root();
  for (const n of ['', '.', '..', 'a/b', 'a\0b', 'x'.repeat(256)]) assert.equal(image.lookup(root, Buffer.from(n)), undefined, JSON.stringify(n));
});
