/**
 * Issue 14: edge cases where our mounts and CLI must do what the kernel's squashfs (and
 * overlayfs over it) and unsquashfs do, on images written by mksquashfs and by squashfs-tools-ng
 * (gensquashfs, tar2sqfs):
 * - symlink targets of 4095, 4096 (read back as 4095 bytes) and more bytes (lstat EINVAL);
 * - lseek SEEK_DATA/SEEK_HOLE: the image's sparse blocks are holes (also seen through tar -S);
 * - getxattr/listxattr errnos, st_blksize, the ".." d_ino of directories and the root;
 * - `atomfs sqfs extract` carries on past entries Linux refuses, as unsquashfs does, and exits 2;
 * - `atomfs sqfs ls/cat/extract` take and print names that are not UTF-8;
 * - with --offset, errors name offsets in the file.
 * The syscalls (lseek, getdents64, getxattr) are made by a python3 probe run on both mounts.
 */
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  compareSnapshots,
  makeTempDir,
  processCleanup,
  run,
  snapshotDir,
  useCleanup,
  withLoopMount,
  withOverlayMount,
  type RunResult,
} from './lib/index.js';
import { atomfsOk, cleanAtomfsAtEnd } from './atomfs-cli.js';
import { writeImage, type LayerFile } from './oci-images.js';
import { ATOMFS, atomfs, mountOurs, type CliEnv } from './sqfs-mount-helpers.js';

const BS = 128 * 1024;

let work = '';
let env: CliEnv;
/** gensquashfs: long symlinks, sparse files, no xattr table. */
let ngImage = '';
/** gensquashfs with 4 KiB blocks: a sparse file whose block list spans several metadata chunks. */
let ng4kImage = '';
/** tar2sqfs of a GNU sparse tar. */
let tarImage = '';
/** mksquashfs: sparse files, xattrs, names that are not UTF-8. */
let mkImage = '';
/** mksquashfs -no-xattrs: hard links, a fifo, a device (basic and extended inodes without xattr table). */
let mkNoXattrImage = '';

/** Sparse layouts (offset, bytes) + size; written as real sparse files, the writers find the zero blocks. */
const SPARSE: Record<string, { parts: [number, Buffer][]; size: number }> = {
  'hole-end': { parts: [[0, Buffer.alloc(10, 'x')]], size: 5 * BS },
  'hole-start': { parts: [[4 * BS, Buffer.alloc(10, 'y')]], size: 4 * BS + 10 },
  'tail-zero': { parts: [[0, Buffer.from('z')]], size: 3 * BS + 100 },
  'all-zero': { parts: [], size: 3 * BS },
  mid: { parts: [[0, Buffer.from('a')], [2 * BS + 5, Buffer.from('b')], [7 * BS, Buffer.alloc(BS, 'c')]], size: 8 * BS },
  big: { parts: [[3 * BS, Buffer.alloc(BS, 'B')], [40 * BS + 50, Buffer.from('C')]], size: 64 * BS + 7 },
  tiny: { parts: [[0, Buffer.from('hello')]], size: 5 },
  empty: { parts: [], size: 0 },
};

function writeSparse(path: string, parts: [number, Buffer][], size: number): void {
  const fd = openSync(path, 'w');
  try {
    for (const [off, data] of parts) writeSync(fd, data, 0, data.length, off);
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

/** A symlink target of exactly n bytes (with slashes, as real ones have). */
function target(n: number, ch = 'a'): string {
  const tail = '/x/y/z';
  return ch.repeat(n - tail.length) + tail;
}

before(async () => {
  work = makeTempDir('edge14', processCleanup);
  env = { tmpdir: join(work, 'cli-tmp') };
  mkdirSync(env.tmpdir);
  const data = join(work, 'data');
  mkdirSync(data);
  for (const [name, s] of Object.entries(SPARSE)) writeSparse(join(data, name), s.parts, s.size);
  writeFileSync(join(data, 'small'), 'hello\n');

  // gensquashfs writes symlinks of any length (Linux cannot create one over 4095 bytes).
  const pack = ['dir /d 0755 0 0', 'slink /d/short 0777 0 0 small'];
  for (const n of [4095, 4096, 4097, 10000]) pack.push(`slink /d/l${n} 0777 0 0 ${target(n)}`);
  for (const name of Object.keys(SPARSE)) pack.push(`file /${name} 0644 0 0 ${name}`);
  pack.push('file /d/small 0640 1 2 small');
  // Only in this image ("d" is in another layer of the overlay test too: a merged directory there).
  pack.push('dir /e 0755 0 0', `slink /e/l4096 0777 0 0 ${target(4096)}`, `slink /e/l4097 0777 0 0 ${target(4097)}`);
  writeFileSync(join(work, 'ng.pack'), pack.join('\n') + '\n');
  ngImage = join(work, 'ng.sqfs');
  await run(['gensquashfs', '-q', '-F', join(work, 'ng.pack'), '-D', data, '-c', 'gzip', '-f', ngImage]);

  // 6144 blocks of 4 KiB: three chunks of the block list, data around the chunk boundaries.
  const K4 = 4096;
  writeSparse(join(data, 'chunks'), [[0, Buffer.from('0')], [2047 * K4, Buffer.from('1')], [2048 * K4 + 9, Buffer.from('2')], [4100 * K4, Buffer.alloc(K4, 3)], [6143 * K4, Buffer.alloc(K4, 4)]], 6144 * K4);
  writeFileSync(join(work, 'ng4k.pack'), `file /chunks 0644 0 0 chunks\nfile /mid 0644 0 0 mid\n`);
  ng4kImage = join(work, 'ng4k.sqfs');
  await run(['gensquashfs', '-q', '-F', join(work, 'ng4k.pack'), '-D', data, '-b', '4096', '-c', 'xz', '-f', ng4kImage]);

  // tar2sqfs from a GNU tar that records the files as sparse.
  const tarFile = join(work, 'sparse.tar');
  await run(['tar', '-C', data, '--format=gnu', '-S', '-cf', tarFile, ...Object.keys(SPARSE), 'small']);
  tarImage = join(work, 'tar.sqfs');
  await run(['sh', '-c', `tar2sqfs -q -c zstd -f "$1" < "$2"`, 'sh', tarImage, tarFile]);

  // mksquashfs: sparse files again, xattrs of the three namespaces, names and targets that are not UTF-8.
  const mk = join(work, 'mk');
  mkdirSync(join(mk, 'dir'), { recursive: true });
  for (const [name, s] of Object.entries(SPARSE)) writeSparse(join(mk, name), s.parts, s.size);
  writeFileSync(join(mk, 'dir', 'f'), 'with xattrs\n');
  await run(['setfattr', '-n', 'user.a', '-v', '1', join(mk, 'dir', 'f')]);
  await run(['setfattr', '-n', 'trusted.t', '-v', 'tt', join(mk, 'dir', 'f')]);
  await run(['setfattr', '-n', 'security.s', '-v', 'ss', join(mk, 'dir')]);
  symlinkSync('dir/f', join(mk, 'link'));
  writeFileSync(Buffer.from(`${mk}/x\xff\xfe`, 'latin1'), 'raw name\n');
  mkdirSync(Buffer.from(`${mk}/d\xe9`, 'latin1'));
  writeFileSync(Buffer.concat([Buffer.from(`${mk}/d`), Buffer.from([0xe9]), Buffer.from('/f\u00e9')]), 'utf-8 name below\n');
  symlinkSync(Buffer.from('x\xff\xfe', 'latin1'), Buffer.from(`${mk}/l\x80`, 'latin1'));
  writeFileSync(join(mk, '\ufffd'), 'a real U+FFFD\n');
  mkImage = join(work, 'mk.sqfs');
  await run(['mksquashfs', mk, mkImage, '-noappend', '-quiet', '-no-progress', '-comp', 'lz4']);

  const nox = join(work, 'nox');
  mkdirSync(join(nox, 'd'), { recursive: true });
  writeFileSync(join(nox, 'f'), 'plain\n');
  writeFileSync(join(nox, 'h'), 'linked\n');
  linkSync(join(nox, 'h'), join(nox, 'd', 'h2'));
  symlinkSync('f', join(nox, 'l'));
  await run(['mkfifo', join(nox, 'p')]);
  await run(['mknod', join(nox, 'c'), 'c', '1', '3']);
  mkNoXattrImage = join(work, 'nox.sqfs');
  await run(['mksquashfs', nox, mkNoXattrImage, '-noappend', '-quiet', '-no-progress', '-no-xattrs']);
});
after(() => processCleanup.run());

/**
 * The syscalls a user makes, as JSON keyed "path what": lstat fields, readlink bytes, listxattr,
 * getxattr of names in and outside squashfs's namespaces, getdents64's d_ino of "." and "..",
 * and lseek(SEEK_DATA/SEEK_HOLE) at every block boundary (±1) of every regular file.
 */
const PROBE = String.raw`
import ctypes, json, os, platform, stat, sys
root, bs, dents_mode = sys.argv[1].encode(), int(sys.argv[2]), sys.argv[3]
out = {}
def rec(k, f):
    try: out[k] = f()
    except OSError as e: out[k] = 'E%d' % e.errno
libc = ctypes.CDLL(None, use_errno=True)
NR_GETDENTS64 = {'x86_64': 217, 'aarch64': 61}[platform.machine()]
def dots(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        buf, res = ctypes.create_string_buffer(1 << 16), {}
        while True:
            n = libc.syscall(NR_GETDENTS64, fd, buf, 1 << 16)
            if n < 0: raise OSError(ctypes.get_errno(), 'getdents64')
            if n == 0: return res
            raw, i = buf.raw[:n], 0
            while i < n:
                reclen = int.from_bytes(raw[i + 16:i + 18], 'little')
                name = raw[i + 19:i + reclen].split(b'\0')[0]
                if name in (b'.', b'..'): res[name.decode()] = int.from_bytes(raw[i:i + 8], 'little')
                i += reclen
    finally: os.close(fd)
NAMES = ['system.posix_acl_access', 'system.posix_acl_default', 'system.foo', 'foo.bar', 'user.a', 'user.zz', 'trusted.t', 'security.s']
def seeks(p):
    fd = os.open(p, os.O_RDONLY)
    try:
        size, res = os.fstat(fd).st_size, []
        offs = {0, 1, size - 1, size, size + 1} | {b * bs + d for b in range(size // bs + 2) for d in (-1, 0, 1)}
        for o in sorted(x for x in offs if x >= 0):
            row = [o]
            for w in (os.SEEK_DATA, os.SEEK_HOLE):
                try: row.append(os.lseek(fd, o, w))
                except OSError as e: row.append('E%d' % e.errno)
            res.append(row)
        return res
    finally: os.close(fd)
def visit(p, key, dtype):
    rec(key + ' lstat', lambda: (lambda s: [s.st_mode, s.st_size, s.st_blocks, s.st_blksize, s.st_nlink, s.st_uid, s.st_gid])(os.lstat(p)))
    rec(key + ' readlink', lambda: os.readlink(p).hex())
    rec(key + ' listxattr', lambda: sorted(os.listxattr(p, follow_symlinks=False)))
    for x in NAMES: rec(key + ' getxattr ' + x, lambda: os.getxattr(p, x, follow_symlinks=False).hex())
    if dtype == 'dir':
        # 'raw': the numbers; 'rel': whether "." and ".." carry the st_ino of the directory and its parent.
        if dents_mode == 'raw': rec(key + ' dots', lambda: dots(p))
        elif dents_mode == 'rel' and key != '/':
            rec(key + ' dots', lambda: (lambda d: [d['.'] == os.lstat(p).st_ino, d['..'] == os.lstat(os.path.dirname(p)).st_ino])(dots(p)))
        for e in sorted(os.scandir(p), key=lambda e: e.name):
            visit(e.path, key.rstrip('/') + '/' + e.name.decode('utf-8', 'backslashreplace'),
                  'dir' if e.is_dir(follow_symlinks=False) else 'file' if e.is_file(follow_symlinks=False) else 'other')
    elif dtype == 'file':
        rec(key + ' seek', lambda: seeks(p))
visit(root, '/', 'dir')
print(json.dumps(out, sort_keys=True))
`;

type Probe = Record<string, unknown>;

async function probe(root: string, blockSize: number, dents: 'raw' | 'rel' = 'raw'): Promise<Probe> {
  const r = await run(['python3', '-c', PROBE, root, String(blockSize), dents], { timeoutMs: 300_000 });
  return JSON.parse(r.stdout.toString('utf8')) as Probe;
}

/** Keys whose values differ, with both values (at most 20). */
function differences(kernel: Probe, ours: Probe): string[] {
  const out: string[] = [];
  for (const k of new Set([...Object.keys(kernel), ...Object.keys(ours)])) {
    const a = JSON.stringify(kernel[k]);
    const b = JSON.stringify(ours[k]);
    if (a !== b && out.length < 20) out.push(`${k}: kernel ${a?.slice(0, 300)} ours ${b?.slice(0, 300)}`);
  }
  return out;
}

/** Seek rows [offset, SEEK_DATA, SEEK_HOLE] of one file of a probe. */
function seekRows(p: Probe, path: string): [number, number | string, number | string][] {
  return p[`${path} seek`] as [number, number | string, number | string][];
}

/** The kernel's answers must exercise each case (else the comparison proves nothing). */
function assertKernelCases(k: Probe, what: string): void {
  const all = JSON.stringify(k);
  assert.ok(all.includes('"E95"'), `${what}: the kernel answers some xattr call with EOPNOTSUPP`);
  assert.ok(all.includes('"E61"'), `${what}: the kernel answers some getxattr with ENODATA`);
  assert.ok(all.includes('"E6"'), `${what}: the kernel answers some lseek with ENXIO`);
  assert.equal((k['/big lstat'] as number[] | undefined)?.[3], 1024, `${what}: st_blksize 1024 on the kernel's mount`);
  const big = seekRows(k, '/big');
  assert.ok(big.some(([o, , hole]) => typeof hole === 'number' && hole < SPARSE.big!.size && o < SPARSE.big!.size), `${what}: the kernel reports holes in /big`);
}

describe('our mounts answer like the kernel squashfs and overlayfs', () => {
  for (const [name, image, bs] of [
    ['gensquashfs', () => ngImage, BS],
    ['gensquashfs, 4 KiB blocks', () => ng4kImage, 4096],
    ['tar2sqfs', () => tarImage, BS],
    ['mksquashfs', () => mkImage, BS],
    ['mksquashfs -no-xattrs', () => mkNoXattrImage, BS],
  ] as const) {
    test(`atomfs sqfs mount equals the kernel's squashfs mount: ${name}`, async (t) => {
      const stack = useCleanup(t);
      const kernel = await withLoopMount(image(), (mp) => probe(mp, bs));
      const mp = join(work, `mp-${name.replace(/\W+/g, '-')}`);
      mkdirSync(mp);
      await mountOurs(image(), mp, [], env, stack);
      const ours = await probe(mp, bs);
      assert.deepEqual(differences(kernel, ours), []);
      assert.ok(Object.keys(kernel).length > 20, `${Object.keys(kernel).length} answers compared`);
      const text = JSON.stringify(kernel);
      if (image() === ngImage) {
        // What the issue is about, seen on the kernel's side: 4096 reads back as 4095 bytes, longer is EINVAL.
        assert.equal((kernel['/d/l4096 readlink'] as string).length / 2, 4095);
        assert.equal((kernel['/d/l4096 lstat'] as number[])[1], 4096);
        assert.equal(kernel['/d/l4097 lstat'], 'E22');
        assert.equal(kernel['/d/l10000 readlink'], 'E22');
        assert.equal((kernel['/d/l4095 readlink'] as string).length / 2, 4095);
        assertKernelCases(kernel, name);
        // gensquashfs stores 0 as the root's parent: d_ino 0 for "..", which glibc's readdir hides.
        assert.deepEqual(kernel['/ dots'], { '.': (kernel['/ dots'] as Record<string, number>)['.'], '..': 0 });
      }
      if (image() === ng4kImage) {
        const rows = seekRows(kernel, '/chunks');
        assert.ok(rows.some(([o, data]) => o === 2049 * 4096 && data === 4100 * 4096), 'SEEK_DATA crosses a chunk of the block list');
      }
      if (image() === mkImage || image() === tarImage) assertKernelCases(kernel, name);
      if (image() === mkNoXattrImage) assert.ok(text.includes('"E95"') && text.includes('listxattr":[]'), 'no xattr table: some inodes list nothing, others EOPNOTSUPP');
    });
  }

  test('tar -S --hole-detection=seek archives the same from our mount as from the kernel', async (t) => {
    const stack = useCleanup(t);
    const tarOf = (mp: string) => run(['tar', '--format=gnu', '-S', '--hole-detection=seek', '-cf', '-', '-C', mp, 'big', 'mid', 'hole-end', 'all-zero']);
    const kernel = (await withLoopMount(ngImage, tarOf)).stdout;
    const mp = join(work, 'mp-tar');
    mkdirSync(mp);
    await mountOurs(ngImage, mp, [], env, stack);
    const ours = (await tarOf(mp)).stdout;
    assert.ok(kernel.length < SPARSE.big!.size / 4, `the kernel's holes keep the archive small (${kernel.length} bytes)`);
    assert.equal(ours.length, kernel.length);
    assert.ok(ours.equals(kernel), 'same archive bytes (sparse maps included)');
  });

  test('atomfs mount --backend fuse equals the kernel overlayfs of the same layers', async (t) => {
    const stack = useCleanup(t);
    const oci = join(work, 'oci');
    const runDir = join(work, 'run');
    cleanAtomfsAtEnd(stack, work);
    // Bottom first: mksquashfs with xattrs, then without an xattr table, then gensquashfs on top.
    const layers: LayerFile[] = [mkImage, mkNoXattrImage, ngImage].map((file) => ({ file, squashfsBytes: statSync(file).size }));
    await writeImage(oci, 'edge', layers, { noRootHash: true });
    // Inode numbers differ (overlayfs encodes the layer in them): "." and ".." are compared as
    // "the st_ino of the directory / of its parent". The root's ".." is left out (overlayfs shows
    // a number no inode has).
    const kernel = await withLoopMount(mkImage, (bottom) =>
      withLoopMount(mkNoXattrImage, (middle) => withLoopMount(ngImage, (top) => withOverlayMount([top, middle, bottom], (mp) => probe(mp, BS, 'rel'), { userxattr: true }))),
    );
    const mp = join(work, 'mp-overlay');
    mkdirSync(mp);
    await atomfsOk(['mount', '--backend', 'fuse', '--allow-missing-verity', `${oci}:edge`, mp], { runDir });
    let ours: Probe;
    try {
      ours = await probe(mp, BS, 'rel');
    } finally {
      await atomfsOk(['umount', mp], { runDir });
    }
    assert.deepEqual(differences(kernel, ours), []);
    assert.equal(kernel['/e/l4097 lstat'], 'E22');
    assert.equal((kernel['/e/l4096 readlink'] as string).length / 2, 4095);
    // In a directory merged from two layers overlayfs leaves out what it cannot look up.
    assert.equal(kernel['/d/l4097 lstat'], undefined);
    assert.equal((kernel['/d/l4096 readlink'] as string).length / 2, 4095);
    assert.ok(kernel['/d/h2 lstat'] !== undefined, '/d is merged');
    assert.deepEqual(kernel['/d dots'], [true, true], 'overlayfs: ".." of /d is the root');
    assertKernelCases(kernel, 'overlayfs');
  });
});

describe('atomfs sqfs extract carries on like unsquashfs', () => {
  /** Extract with both tools; returns their results and snapshots. */
  async function both(ours: string, reference: string, tag: string) {
    const a = join(work, `x-ours-${tag}`);
    const b = join(work, `x-unsq-${tag}`);
    const r = await atomfs(['sqfs', 'extract', ours, a], env);
    const u = await run(['unsquashfs', '-no-progress', '-d', b, reference], { allowFail: true });
    assert.ok(r.status === 0 || r.status === 3, `atomfs sqfs extract: ${r.stderr.toString()}`);
    return { r, u, a: await snapshotDir(a), b: await snapshotDir(b) };
  }

  test('symlinks too long for Linux: reported and skipped, the rest extracted, directory modes and mtimes restored, exit 3', async () => {
    const pack = [
      'dir /a 0700 0 0',
      `slink /a/l4096 0777 0 0 ${target(4096, 'b')}`,
      'file /a/after 0644 0 0 small',
      `slink /a/m5000 0777 0 0 ${target(5000, 'c')}`,
      'dir /a/ro 0555 0 0',
      'file /a/ro/inside 0600 0 0 small',
      'slink /a/ro/ok 0777 0 0 inside',
      'file /b 0644 0 0 small',
    ];
    writeFileSync(join(work, 'long.pack'), pack.join('\n') + '\n');
    const image = join(work, 'long.sqfs');
    await run(['gensquashfs', '-q', '-F', join(work, 'long.pack'), '-D', join(work, 'data'), '-d', 'mtime=1234567890', '-f', image]);
    const { r, u, a, b } = await both(image, image, 'long');
    assert.equal(u.status, 2, `unsquashfs fails at the end: ${u.stderr.toString()}`);
    assert.match(u.stderr.toString(), /failed to create symlink .*l4096/);
    assert.equal(r.status, 3, r.stderr.toString());
    assert.deepEqual(compareSnapshots(b, a), [], 'same tree as unsquashfs -d (modes and mtimes of directories included)');
    assert.ok(a.has('/a/ro/inside') && a.has('/b'), 'entries after the skipped ones are there');
    const err = r.stderr.toString().trim().split('\n');
    assert.deepEqual(err.filter((l) => l.startsWith('warning: skipped')), ['warning: skipped /a/l4096 (symlink): ENAMETOOLONG', 'warning: skipped /a/m5000 (symlink): ENAMETOOLONG']);
    assert.equal(err.at(-1), 'Error: 2 entries not extracted: /a/l4096 (symlink): ENAMETOOLONG; /a/m5000 (symlink): ENAMETOOLONG');
    assert.equal(err.filter((l) => l.startsWith('Error:')).length, 1);
  });

  test('256-byte names (a file, and a directory with contents) are skipped; the blocks decoded ahead on the second thread stay in step', async () => {
    // Incompressible data so the image passes the size where extraction decodes on a second thread.
    const data = join(work, 'rand');
    mkdirSync(data);
    for (const n of ['f1', 'f2', 'f3', 'skip', 'inner', 'z1', 'z2', 'hl']) writeFileSync(join(data, n), randomBytes(3 * 1024 * 1024 + 777));
    writeFileSync(join(data, 'small'), 'small tail\n');
    const long = 'n'.repeat(256);
    const dirLong = 'd'.repeat(256);
    // A hard link whose first name (in walk order) is refused: the second name gets the content.
    const linkFirst = 'e'.repeat(256);
    const kept = ['dir /a 0750 0 0', 'file /a/f9 0644 0 0 hl', 'file /a/f1 0644 0 0 f1', 'file /a/f2 0644 0 0 f2', 'file /a/f3 0644 0 0 f3', 'file /a/s1 0644 0 0 small', 'file /a/zz 0644 0 0 z1', 'file /b 0644 0 0 z2', 'file /c 0644 0 0 small'];
    const refused = [`file /a/${long} 0644 0 0 skip`, `dir /a/${dirLong} 0755 0 0`, `file /a/${dirLong}/inner 0644 0 0 inner`, `file /a/${dirLong}/s2 0644 0 0 small`];
    const all0 = [...kept.filter((l) => !l.startsWith('file /a/f9 ')), `file /a/${linkFirst} 0644 0 0 hl`, `link /a/f9 0777 0 0 /a/${linkFirst}`, ...refused];
    writeFileSync(join(work, 'names-all.pack'), all0.join('\n') + '\n');
    writeFileSync(join(work, 'names-kept.pack'), kept.join('\n') + '\n');
    const all = join(work, 'names-all.sqfs');
    const reference = join(work, 'names-kept.sqfs');
    for (const [pack, img] of [['names-all.pack', all], ['names-kept.pack', reference]] as const) {
      await run(['gensquashfs', '-q', '-F', join(work, pack), '-D', data, '-d', 'mtime=1600000000', '-c', 'zstd', '-f', img]);
    }
    assert.ok(statSync(all).size > 17 * 1024 * 1024, 'big enough for the second decoding thread');
    const { r, u, a, b } = await both(all, reference, 'names');
    assert.equal(u.status, 0, u.stderr.toString());
    assert.equal(r.status, 3, r.stderr.toString());
    assert.deepEqual(compareSnapshots(b, a), [], 'everything but the refused names, byte for byte, as unsquashfs extracts the image without them');
    const last = r.stderr.toString().trim().split('\n').at(-1)!;
    assert.equal(last, `Error: 3 entries not extracted: /a/${dirLong} (directory and its contents): ENAMETOOLONG; /a/${linkFirst} (file): ENAMETOOLONG; /a/${long} (file): ENAMETOOLONG`);
  });
});

/** printf(1) format of a byte string (octal escapes for everything but plain ASCII). */
function fmt(b: Buffer): string {
  return [...b].map((c) => (c >= 0x20 && c < 0x7f && c !== 0x25 && c !== 0x5c ? String.fromCharCode(c) : `\\${c.toString(8).padStart(3, '0')}`)).join('');
}

/** `atomfs ARGS` with arguments of any bytes (node can only spawn UTF-8 argv): bash builds them with printf. */
function atomfsBytes(args: (string | Buffer)[]): Promise<RunResult> {
  const script = 'a=(); for f in "$@"; do a+=("$(printf -- "$f")"); done; exec "${a[@]}"';
  const formats = [process.execPath, ATOMFS, ...args].map((x) => fmt(typeof x === 'string' ? Buffer.from(x) : x));
  return run(['bash', '-c', script, 'bash', ...formats], { allowFail: true, env: { ...process.env, TMPDIR: env.tmpdir } });
}

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('names that are not UTF-8 on the command line and in output', () => {
  test('sqfs cat and ls take the raw bytes of a path, as the kernel mount does', async () => {
    const kernelFile = await withLoopMount(mkImage, (mp) => readFileSync(Buffer.concat([Buffer.from(mp), latin1('/x\xff\xfe')])));
    const cat = await atomfsBytes(['sqfs', 'cat', mkImage, latin1('/x\xff\xfe')]);
    assert.equal(cat.status, 0, cat.stderr.toString());
    assert.ok(cat.stdout.equals(kernelFile));
    const viaLink = await atomfsBytes(['sqfs', 'cat', mkImage, latin1('/l\x80')]);
    assert.ok(viaLink.stdout.equals(kernelFile), 'a symlink whose name and target are not UTF-8');
    // The lossy decoding names another file (U+FFFD exists in the image): it must not be what we read.
    const fffd = await atomfsBytes(['sqfs', 'cat', mkImage, '/\ufffd']);
    assert.equal(fffd.stdout.toString(), 'a real U+FFFD\n');
    const missing = await atomfsBytes(['sqfs', 'cat', mkImage, latin1('/x\xff\xfd')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr.toString(), /^Error: .*ENOENT/);
  });

  test('sqfs ls prints raw names like unsquashfs -l; --json adds their bytes in base64', async () => {
    const unsq = (await run(['unsquashfs', '-l', mkImage])).stdout;
    const reference = splitLines(unsq)
      .filter((l) => l.subarray(0, 13).toString() === 'squashfs-root')
      .map((l) => (l.length === 13 ? Buffer.from('/') : l.subarray(13)));
    assert.ok(reference.some((l) => l.equals(latin1('/x\xff\xfe'))), 'unsquashfs lists the raw name');
    const ls = await atomfsBytes(['sqfs', 'ls', mkImage]);
    assert.equal(ls.status, 0, ls.stderr.toString());
    assert.deepEqual(splitLines(ls.stdout).map((l) => l.toString('hex')), reference.map((l) => l.toString('hex')));
    const sub = await atomfsBytes(['sqfs', 'ls', mkImage, latin1('/d\xe9')]);
    assert.deepEqual(
      splitLines(sub.stdout).map((l) => l.toString('hex')),
      reference.filter((l) => l.subarray(0, 3).equals(latin1('/d\xe9'))).map((l) => l.toString('hex')),
    );
    const json = (await atomfsBytes(['sqfs', 'ls', '--json', mkImage])).stdout
      .toString()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { path: string; pathBase64?: string; target?: string; targetBase64?: string });
    const raw = json.map((e) => (e.pathBase64 !== undefined ? Buffer.from(e.pathBase64, 'base64') : Buffer.from(e.path)));
    assert.deepEqual(raw.map((l) => l.toString('hex')), reference.map((l) => l.toString('hex')));
    for (const e of json) {
      const valid = Buffer.from(e.path).equals(e.pathBase64 !== undefined ? Buffer.from(e.pathBase64, 'base64') : Buffer.from(e.path));
      assert.equal(e.pathBase64 === undefined, valid, `${e.path}: base64 exactly when the name is not UTF-8`);
    }
    assert.equal(json.find((e) => e.path === '/\ufffd')?.pathBase64, undefined, 'a real U+FFFD is plain UTF-8');
    const link = json.find((e) => e.pathBase64 === latin1('/l\x80').toString('base64'))!;
    const kernelTarget = await withLoopMount(mkImage, (mp) => readlinkSync(Buffer.concat([Buffer.from(mp), latin1('/l\x80')]), { encoding: 'buffer' }));
    assert.ok(Buffer.from(link.targetBase64!, 'base64').equals(kernelTarget));
  });

  test('sqfs extract of a subdirectory named in raw bytes equals unsquashfs of it', async () => {
    const out = join(work, 'x-raw-sub');
    const r = await atomfsBytes(['sqfs', 'extract', '--subdir', latin1('/d\xe9'), mkImage, out]);
    assert.equal(r.status, 0, r.stderr.toString());
    const ref = join(work, 'x-raw-sub-unsq');
    // unsquashfs keeps the path of what it extracts: compare below it.
    await run(['bash', '-c', `unsquashfs -no-progress -d "$1" "$2" "$(printf '/d\\351')" >/dev/null`, 'bash', ref, mkImage]);
    const refFile = Buffer.concat([Buffer.from(ref), latin1('/d\xe9/'), Buffer.from('f\u00e9')]);
    const oursFile = join(out, 'f\u00e9');
    assert.equal(readFileSync(oursFile, 'utf8'), 'utf-8 name below\n');
    assert.ok(readFileSync(oursFile).equals(readFileSync(refFile)));
    assert.equal(lstatSync(oursFile).mode, lstatSync(refFile).mode);
    assert.equal(lstatSync(out).mtimeMs, lstatSync(Buffer.concat([Buffer.from(ref), latin1('/d\xe9')])).mtimeMs, 'the subdirectory itself becomes DIR, with its mtime');
  });
});

function splitLines(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x0a) {
      out.push(b.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

describe('--offset: errors name offsets in the file', () => {
  test('a wrong --offset, a corrupt field and an offset past the end', async () => {
    const file = join(work, 'embedded.bin');
    const image = readFileSync(mkNoXattrImage);
    writeFileSync(file, Buffer.concat([Buffer.alloc(1000), image]));
    // The right offset works and lists what unsquashfs -o lists.
    const ok = await atomfs(['sqfs', 'ls', '--offset', '1000', file], env);
    assert.equal(ok.status, 0, ok.stderr.toString());
    const unsq = await run(['unsquashfs', '-o', '1000', '-l', file]);
    assert.equal(splitLines(unsq.stdout).filter((l) => l.toString().startsWith('squashfs-root')).length, splitLines(ok.stdout).length);
    const wrong = await atomfs(['sqfs', 'info', '--offset', '900', file], env);
    assert.equal(wrong.status, 1);
    assert.equal((await run(['unsquashfs', '-o', '900', '-s', file], { allowFail: true })).status === 0, false, 'unsquashfs finds no image at 900 either');
    assert.match(wrong.stderr.toString(), /^Error: .*corrupt image at offset 900 of the file \(0 into the image at 900\): bad magic/);
    // directory_table_start (superblock offset 72) pointing past the image: the error names byte 1072 of the file.
    const bad = Buffer.concat([Buffer.alloc(1000), image]);
    bad.writeBigUInt64LE(BigInt(image.length * 4), 1000 + 72);
    writeFileSync(file, bad);
    const corrupt = await atomfs(['sqfs', 'ls', '--offset', '1000', file], env);
    assert.equal(corrupt.status, 1);
    assert.match(corrupt.stderr.toString(), /^Error: .*corrupt image at offset 1072 of the file \(72 into the image at 1000\): directory_table_start/);
    const past = await atomfs(['sqfs', 'info', '--offset', String(bad.length + 1), file], env);
    assert.equal(past.status, 1);
    assert.match(past.stderr.toString(), new RegExp(`^Error: .*offset ${bad.length + 1} is past the end of the file \\(${bad.length} bytes\\)\\n$`));
  });
});
