import assert from 'node:assert/strict';
import * as nodefs from 'node:fs';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { after, before, test } from 'node:test';
import { cleanup, smallTree, tempDir } from '@atomfs/testkit';
import { Erofs, FsError } from '../src/index.js';
import { mkfsErofs } from './helpers.js';

/** The node:fs-shaped path API answers what node:fs answers on the source tree of the image. */
let dir: string;
let src: string;
let img: Erofs;

before(() => {
  dir = tempDir('erofs-paths');
  src = join(dir, 'src');
  smallTree(src, 'erofs');
  mkfsErofs(src, join(dir, 'img.erofs'), ['-zlz4hc', '-Eztailpacking']);
  img = Erofs.open(join(dir, 'img.erofs'));
});
after(() => {
  img.close();
  cleanup(dir);
});

test('stat, lstat, readdir, readlink, readFile, createReadStream, walk', async () => {
  for (const p of ['/text.txt', '/a/hardlink.txt', '/link', '/null', '/fifo', '/a/b', '/empty']) {
    const ours = await img.paths.lstat(p);
    const theirs = nodefs.lstatSync(join(src, p));
    for (const k of ['mode', 'nlink', 'uid', 'gid', 'rdev', 'mtimeMs'] as const) assert.equal(ours[k], theirs[k], `${p} ${k}`);
    if (!theirs.isDirectory()) assert.equal(ours.size, theirs.size, `${p} size`);
    assert.equal(ours.isSymbolicLink(), theirs.isSymbolicLink());
  }
  assert.equal((await img.paths.stat('/link')).size, nodefs.statSync(join(src, 'link')).size, 'stat follows the link');
  assert.deepEqual(await img.paths.readdir('/big-dir'), nodefs.readdirSync(join(src, 'big-dir')).sort());
  const dirents = await img.paths.readdir('/', { withFileTypes: true });
  assert.deepEqual(
    dirents.map((d) => [d.name, d.isDirectory(), d.isSymbolicLink(), d.isFIFO()]),
    nodefs
      .readdirSync(src, { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((d) => [d.name, d.isDirectory(), d.isSymbolicLink(), d.isFIFO()]),
  );
  assert.equal(await img.paths.readlink('/link'), nodefs.readlinkSync(join(src, 'link')));
  assert.ok((await img.paths.readFile('/random.bin')).equals(nodefs.readFileSync(join(src, 'random.bin'))));
  assert.equal(img.paths.readFileSync('/link', 'utf8'), 'deep\n');
  assert.equal(await text(img.paths.createReadStream('/text.txt', { start: 6, end: 10 })), nodefs.readFileSync(join(src, 'text.txt'), 'utf8').slice(6, 11));
  let n = 0;
  for await (const e of img.paths.walk('/')) {
    n++;
    if (e.path.toString() === '/a/b/c/deep.txt') assert.equal(e.stats.size, 5);
  }
  assert.equal(n, 1 + nodefs.readdirSync(src, { recursive: true }).length);
});

test('errors are node:fs-like', async () => {
  await assert.rejects(img.paths.stat('/nope'), (e: FsError) => e.code === 'ENOENT');
  await assert.rejects(img.paths.readdir('/text.txt'), (e: FsError) => e.code === 'ENOTDIR');
  await assert.rejects(img.paths.readFile('/a'), (e: FsError) => e.code === 'EISDIR');
  await assert.rejects(img.paths.readlink('/text.txt'), (e: FsError) => e.code === 'EINVAL');
});
