/**
 * The source tree every squashfs / FUSE / overlay test is built from. It holds one of each thing
 * an image can contain and the boundary cases of each (see `generateTree`). Content is
 * deterministic (seeded), so two runs produce byte-identical trees; metadata is set explicitly
 * (owners, modes, mtimes) so nothing depends on the host or the time of the run.
 *
 * What the function returns only names notable entries for tests that target one feature; the
 * ground truth is always read back from disk with snapshotDir().
 */
import {
  chmodSync,
  closeSync,
  ftruncateSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { makeContent, type ContentKind } from './content.js';
import { run } from './exec.js';
import { joinBytes, nameToKey } from './names.js';
import { setXattrs, type XattrAssignment } from './xattrs.js';

export interface TreeOptions {
  /** Add the > 4 GiB sparse file (slow to pack and hash: seconds per image). Default false. */
  big?: boolean;
  /** Add the 20 MiB compressible file and the 100 MiB sparse file. Default true. */
  medium?: boolean;
}

/** Path keys (as used in snapshots) of entries tests may want to target. */
export interface TreePaths {
  sizedFiles: string[];
  zeroBlockMiddle: string;
  holesSmall: string;
  duplicates: string[];
  compressible20M?: string;
  sparse100M?: string;
  sparseHuge?: string;
  dir700: string;
  deepLeaf: string;
  longName: string;
  longUtf8Name: string;
  utf8Names: string[];
  nonUtf8Names: string[];
  symlinks: { relative: string; absolute: string; dangling: string; long: string; toDir: string; self: string; nonUtf8Target: string };
  hardlinks: string[];
  fifo: string;
  socket: string;
  charDevices: string[];
  blockDevices: string[];
  setuid: string;
  setgid: string;
  stickyDir: string;
  mode000File: string;
  mode000Dir: string;
  owners: string[];
  xattrBig: string;
  xattrShared: string[];
  emptyDir: string;
  mtimes: Record<string, number>;
}

export interface TreeInfo {
  root: string;
  big: boolean;
  medium: boolean;
  paths: TreePaths;
  /** Entries created, root excluded. */
  entryCount: number;
  /** Sum of regular file sizes (apparent, holes included). */
  apparentBytes: number;
}

export class TreeGenerationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Sizes around 4 KiB pages, 128 KiB blocks, 1 MiB (the largest block size) and some odd ones. */
const SIZES = [
  0, 1, 2, 7, 333, 4095, 4096, 4097, 65537, 131071, 131072, 131073, 200003, 3 * 131072 + 5, 999999,
  MiB - 1, MiB, MiB + 1, 2 * MiB + 17,
];
const KINDS: ContentKind[] = ['random', 'text', 'mixed', 'zeros'];

/** mtimes squashfs can hold (u32 seconds), including the signed-32-bit boundary. */
export const SPECIAL_MTIMES = {
  zero: 0,
  maxInt32: 2 ** 31 - 1,
  int32PlusOne: 2 ** 31,
  u32_3e9: 3_000_000_000,
  maxU32: 2 ** 32 - 1,
} as const;

class Builder {
  readonly root: Buffer;
  readonly xattrs: XattrAssignment[] = [];
  /** Entries in creation order, as byte paths relative to root ('' = root). */
  readonly created: Buffer[] = [];
  apparentBytes = 0;

  constructor(root: string) {
    this.root = Buffer.from(resolve(root), 'utf8');
  }

  abs(rel: Buffer | string): Buffer {
    return joinBytes(this.root, rel);
  }
  key(rel: Buffer | string): string {
    const b = typeof rel === 'string' ? Buffer.from(rel, 'utf8') : rel;
    let k = '';
    let start = 0;
    while (start <= b.length) {
      let end = b.indexOf(0x2f, start);
      if (end < 0) end = b.length;
      k += '/' + nameToKey(b.subarray(start, end));
      start = end + 1;
    }
    return k;
  }
  /** Record an entry created by other means; returns its key. */
  note(rel: Buffer | string): string {
    this.created.push(typeof rel === 'string' ? Buffer.from(rel, 'utf8') : rel);
    return this.key(rel);
  }
  dir(rel: string | Buffer, mode = 0o755): string {
    mkdirSync(this.abs(rel));
    chmodSync(this.abs(rel), mode);
    return this.note(rel);
  }
  file(rel: string | Buffer, data: Buffer | string, mode = 0o644): string {
    writeFileSync(this.abs(rel), data);
    chmodSync(this.abs(rel), mode);
    this.apparentBytes += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    return this.note(rel);
  }
  /** A file of `size` bytes that contains only the given pieces; everything else is a hole. */
  sparse(rel: string, size: number, pieces: Array<{ at: number; data: Buffer }>): string {
    const fd = openSync(this.abs(rel), 'w', 0o644);
    try {
      for (const p of pieces) {
        if (p.at + p.data.length > size) throw new TreeGenerationError(`sparse piece past end of ${rel}`);
        let done = 0;
        while (done < p.data.length) done += writeSync(fd, p.data, done, p.data.length - done, p.at + done);
      }
      ftruncateSync(fd, size);
    } finally {
      closeSync(fd);
    }
    chmodSync(this.abs(rel), 0o644);
    this.apparentBytes += size;
    return this.note(rel);
  }
  symlink(rel: string | Buffer, target: string | Buffer): string {
    symlinkSync(target, this.abs(rel));
    return this.note(rel);
  }
  link(existing: string, rel: string): string {
    linkSync(this.abs(existing), this.abs(rel));
    return this.note(rel);
  }
  /** A fifo or device node via the real tools; mode set explicitly so the umask does not matter. */
  async special(rel: string, mode: number, argv: (abs: string) => string[]): Promise<string> {
    await run(argv(this.abs(rel).toString('utf8')));
    chmodSync(this.abs(rel), mode);
    return this.note(rel);
  }
  xattr(rel: string | Buffer, name: string, value: Buffer | string): void {
    this.xattrs.push({ path: this.abs(rel), name, value: typeof value === 'string' ? Buffer.from(value, 'utf8') : value });
  }
}

/** A fixed pseudo-random mtime per path (FNV-1a of the key), independent of what else exists. */
function defaultMtime(key: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(key, 'utf8')) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return 1_500_000_000 + (h % 200_000_000);
}

/** Bind a unix socket and close the server but keep the socket file (node unlinks it on close). */
async function makeSocket(path: string): Promise<void> {
  const server = createServer();
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(path, () => res());
  });
  const keep = path + '.keep';
  linkSync(path, keep);
  await new Promise<void>((res) => server.close(() => res()));
  renameSync(keep, path);
  chmodSync(path, 0o755); // bind() applied the umask
  if (!lstatSync(path).isSocket()) throw new TreeGenerationError(`${path} is not a socket after bind`);
}

/** The seed of each generated content, in the order the sections take them. */
interface Seeds {
  next(): number;
}

// ---- sections of the tree (each adds its entries through the builder, in this order) ----------

function addRegularFiles(b: Builder, seeds: Seeds) {
  // ---- regular files: sizes x content kinds -------------------------------------------------
  b.dir('files');
  const sizedFiles: string[] = [];
  SIZES.forEach((size, i) => {
    const kind = size <= 1 ? 'random' : KINDS[i % KINDS.length]!;
    sizedFiles.push(b.file(`files/s${size}-${kind}`, makeContent(kind, size, seeds.next())));
  });
  // Every size once more with incompressible content, so each boundary is seen as raw blocks too.
  for (const size of SIZES.filter((s) => s > 1)) sizedFiles.push(b.file(`files/r${size}`, makeContent('random', size, seeds.next())));
  const blk = 128 * KiB;
  const zeroBlockMiddle = b.file(
    'files/zero-block-middle',
    Buffer.concat([makeContent('random', blk, seeds.next()), Buffer.alloc(blk), makeContent('text', blk + 999, seeds.next())]),
  );
  const holesSmall = b.sparse('files/holes-small', MiB, [{ at: 300_000, data: makeContent('random', 10_000, seeds.next()) }]);
  b.file('files/tail-zeros', Buffer.concat([makeContent('random', 200_000, seeds.next()), Buffer.alloc(100_000)]));
  const dup = makeContent('random', 300_000, seeds.next());
  const dupSmall = makeContent('text', 100, seeds.next());
  const duplicates = [
    b.file('files/dup-a', dup),
    b.file('files/dup-b', dup),
    b.file('files/dup-small-a', dupSmall),
    b.file('files/dup-small-b', dupSmall),
  ];
  return { sizedFiles, zeroBlockMiddle, holesSmall, duplicates };
}

function addLargeFiles(b: Builder, medium: boolean, big: boolean) {
  // ---- large files ------------------------------------------------------------------------
  b.dir('large');
  let compressible20M: string | undefined;
  let sparse100M: string | undefined;
  let sparseHuge: string | undefined;
  // Own seed ranges, so switching these off does not change the content of anything else.
  if (medium) {
    let seedM = 90_000;
    compressible20M = b.file('large/compressible-20M', makeContent('text', 20 * MiB, seedM++));
    sparse100M = b.sparse('large/sparse-100M', 100 * MiB + 123, [
      { at: 0, data: makeContent('random', 64 * KiB, seedM++) },
      { at: 50 * MiB + 4321, data: makeContent('mixed', 200 * KiB, seedM++) },
      { at: 100 * MiB + 123 - 1000, data: makeContent('text', 1000, seedM++) },
    ]);
  }
  if (big) {
    let seedB = 91_000;
    const size = 4.5 * GiB + 7;
    sparseHuge = b.sparse('large/sparse-4.5G', size, [
      { at: 0, data: makeContent('random', MiB, seedB++) },
      { at: 3 * GiB + 12345, data: makeContent('text', 70_000, seedB++) },
      // Straddles the 4 GiB offset: 32-bit offset arithmetic would wrap here.
      { at: 4 * GiB - 100_000, data: makeContent('mixed', 256 * KiB, seedB++) },
      { at: size - 5000, data: makeContent('random', 5000, seedB++) },
    ]);
  }
  return { compressible20M, sparse100M, sparseHuge };
}

function addManyEntries(b: Builder): string {
  // ---- a 700-entry directory (several metadata blocks, directory index, many dir headers) ----
  const dir700 = b.dir('many');
  for (let i = 0; i < 700; i++) {
    const name = `e${String(i).padStart(4, '0')}${i % 7 === 0 ? '-' + 'long'.repeat(1 + (i % 13)) : ''}`;
    if (i % 20 === 7) {
      b.dir(`many/${name}`);
      if (i % 40 === 7) b.file(`many/${name}/inner`, `inner ${i}\n`);
    } else if (i % 20 === 13) {
      b.symlink(`many/${name}`, `target-${i}`);
    } else {
      b.file(`many/${name}`, `entry ${i}\n`.repeat(1 + (i % 5)));
    }
  }
  b.xattr('many', 'user.many', 'seven hundred');
  return dir700;
}

function addDeepNesting(b: Builder): string {
  // ---- 40-level nesting ----------------------------------------------------------------------
  let deep = 'deep';
  b.dir(deep);
  for (let i = 1; i <= 40; i++) {
    deep += `/l${String(i).padStart(2, '0')}`;
    b.dir(deep);
  }
  const deepLeaf = b.file(`${deep}/leaf`, 'bottom of the well\n');
  return deepLeaf;
}

function addNames(b: Builder) {
  // ---- names -------------------------------------------------------------------------------
  b.dir('names');
  const longName = b.file(`names/${'n'.repeat(255)}`, '255 bytes\n');
  const longUtf8Name = b.file(`names/${'é'.repeat(127)}x`, '255 bytes of UTF-8\n');
  const utf8Names = ['héllo wörld', '日本語のファイル名', '🎉 party', 'e\u0301 combining', 'with space', 'Ωmega'].map((n) =>
    b.file(`names/${n}`, `${n}\n`),
  );
  // Names the attr tools must quote; they carry xattrs so the getfattr parser is exercised.
  const quoted = ['tab\there', 'new\nline', 'back\\slash', 'eq=sign'].map((n) => {
    b.xattr(`names/${n}`, 'user.quoted', n);
    return b.file(`names/${n}`, `${n}\n`);
  });
  utf8Names.push(...quoted);
  const nonUtf8 = [Buffer.from('latin1-caf\xe9', 'latin1'), Buffer.from([0xff, 0xfe, 0x41]), Buffer.from([0x63, 0xc3, 0x28])];
  const nonUtf8Names = nonUtf8.map((n) => {
    const rel = Buffer.concat([Buffer.from('names/'), n]);
    b.xattr(rel, 'user.bytes', n);
    return b.file(rel, n);
  });
  return { longName, longUtf8Name, utf8Names, nonUtf8Names };
}

function addSymlinks(b: Builder) {
  // ---- symlinks ----------------------------------------------------------------------------
  b.dir('links');
  const symlinks = {
    relative: b.symlink('links/relative', '../files/s4096-mixed'),
    absolute: b.symlink('links/absolute', '/etc/hostname'),
    dangling: b.symlink('links/dangling', 'does/not/exist'),
    long: b.symlink('links/long', 'x/'.repeat(1999) + 'yz'),
    toDir: b.symlink('links/to-dir', '../deep'),
    self: b.symlink('links/self', 'self'),
    nonUtf8Target: b.symlink('links/bytes-target', Buffer.from('caf\xe9/\xff', 'latin1')),
  };
  return symlinks;
}

function addHardLinks(b: Builder, seeds: Seeds): string[] {
  // ---- hard links --------------------------------------------------------------------------
  b.dir('hard');
  b.dir('hard/a');
  b.dir('hard/b');
  const hardlinks = [b.file('hard/a/one', makeContent('text', 5000, seeds.next()), 0o640)];
  hardlinks.push(b.link('hard/a/one', 'hard/b/two'), b.link('hard/a/one', 'hard/three'));
  b.xattr('hard/a/one', 'user.linked', 'shared by three names');
  b.file('hard/a/empty-1', '');
  b.link('hard/a/empty-1', 'hard/b/empty-2');
  return hardlinks;
}

async function addSpecialFiles(b: Builder) {
  // ---- special files -----------------------------------------------------------------------
  b.dir('special');
  const fifo = await b.special('special/fifo', 0o640, (p) => ['mkfifo', p]);
  await makeSocket(b.abs('special/socket').toString('utf8'));
  const socket = b.note('special/socket');
  const charDevices = [
    await b.special('special/char-1-3', 0o666, (p) => ['mknod', p, 'c', '1', '3']),
    // 0:0 is what overlayfs uses as a whiteout.
    await b.special('special/char-0-0', 0o600, (p) => ['mknod', p, 'c', '0', '0']),
    // Largest device number the squashfs (old-style 32-bit) encoding holds: 12-bit major, 20-bit minor.
    await b.special('special/char-4095-1048575', 0o620, (p) => ['mknod', p, 'c', '4095', '1048575']),
  ];
  const blockDevices = [
    await b.special('special/block-7-200', 0o660, (p) => ['mknod', p, 'b', '7', '200']),
    await b.special('special/block-259-300000', 0o640, (p) => ['mknod', p, 'b', '259', '300000']),
  ];
  b.xattr('special/fifo', 'trusted.fifo', 'on a fifo');
  return { fifo, socket, charDevices, blockDevices };
}

function addPermissions(b: Builder) {
  // ---- permissions -------------------------------------------------------------------------
  b.dir('perms');
  const setuid = b.file('perms/setuid', '#!/bin/sh\n', 0o4755);
  const setgid = b.file('perms/setgid', '#!/bin/sh\n', 0o2755);
  b.file('perms/setuid-setgid', '#!/bin/sh\n', 0o6755);
  b.file('perms/sticky-file', 'x', 0o1644);
  b.file('perms/write-only', 'w', 0o200);
  b.file('perms/all', 'a', 0o777);
  const mode000File = b.file('perms/mode-000', 'nobody may read me\n', 0o000);
  const stickyDir = b.dir('perms/sticky-dir');
  b.file('perms/sticky-dir/inside', 'i');
  chmodSync(b.abs('perms/sticky-dir'), 0o1777);
  b.dir('perms/setgid-dir');
  b.file('perms/setgid-dir/inside', 'i');
  chmodSync(b.abs('perms/setgid-dir'), 0o2775);
  const mode000Dir = b.dir('perms/dir-000');
  b.file('perms/dir-000/hidden', 'behind a 000 directory\n');
  chmodSync(b.abs('perms/dir-000'), 0o000);
  b.dir('perms/dir-111');
  b.file('perms/dir-111/reachable', 'x-only directory\n');
  chmodSync(b.abs('perms/dir-111'), 0o111);
  return { setuid, setgid, stickyDir, mode000File, mode000Dir };
}

async function addOwners(b: Builder): Promise<string[]> {
  // ---- owners ------------------------------------------------------------------------------
  b.dir('owners');
  const owners: string[] = [];
  for (const [uid, gid] of [[0, 0], [1000, 1000], [65534, 65534], [123456, 654321], [4_000_000_000, 4_000_000_001]] as const) {
    owners.push(b.file(`owners/u${uid}-g${gid}`, `${uid}:${gid}\n`));
    lchownSync(b.abs(`owners/u${uid}-g${gid}`), uid, gid);
  }
  owners.push(b.dir('owners/dir-1000'));
  lchownSync(b.abs('owners/dir-1000'), 1000, 1000);
  owners.push(b.symlink('owners/link-1000-2000', 'u1000-g1000'));
  lchownSync(b.abs('owners/link-1000-2000'), 1000, 2000);
  owners.push(await b.special('owners/fifo-65534', 0o664, (p) => ['mkfifo', p]));
  lchownSync(b.abs('owners/fifo-65534'), 65534, 65534);
  return owners;
}

function addXattrs(b: Builder, seeds: Seeds) {
  // ---- xattrs ------------------------------------------------------------------------------
  b.dir('xattrs');
  b.file('xattrs/small', 'small\n');
  b.xattr('xattrs/small', 'user.small', 'hello');
  b.xattr('xattrs/small', 'trusted.small', 'trusted value');
  b.file('xattrs/empty-value', '');
  b.xattr('xattrs/empty-value', 'user.empty', '');
  const xattrBig = b.file('xattrs/big-3000', 'big xattr\n');
  b.xattr('xattrs/big-3000', 'user.big', makeContent('random', 3000, seeds.next()));
  b.file('xattrs/binary', 'bin\n');
  b.xattr('xattrs/binary', 'user.binary', Buffer.from([0, 1, 2, 0, 0xff, 0x0a, 0x3d, 0x5c, 0]));
  b.file('xattrs/many-names', 'many\n');
  for (let i = 0; i < 40; i++) b.xattr('xattrs/many-names', `user.attr${String(i).padStart(2, '0')}`, `value ${i}`);
  b.file('xattrs/long-name', 'long\n');
  b.xattr('xattrs/long-name', 'user.' + 'k'.repeat(200), 'long name');
  // One value on many files (squashfs stores it once, out of line) with per-file sets that differ.
  const sharedValue = makeContent('text', 300, seeds.next());
  b.dir('xattrs/shared');
  const xattrShared: string[] = [];
  for (let i = 0; i < 30; i++) {
    const rel = `xattrs/shared/f${String(i).padStart(2, '0')}`;
    xattrShared.push(b.file(rel, `shared ${i}\n`));
    b.xattr(rel, 'user.shared', sharedValue);
    b.xattr(rel, 'user.id', String(i));
  }
  // Identical whole sets on many files (squashfs stores one xattr id for them).
  b.dir('xattrs/same-set');
  for (let i = 0; i < 10; i++) {
    const rel = `xattrs/same-set/g${i}`;
    b.file(rel, `same set ${i}\n`);
    b.xattr(rel, 'user.a', 'A');
    b.xattr(rel, 'trusted.b', 'B');
  }
  b.dir('xattrs/dir-with-xattrs');
  b.xattr('xattrs/dir-with-xattrs', 'user.dir', 'on a directory');
  b.xattr('xattrs/dir-with-xattrs', 'trusted.dir', 'trusted on a directory');
  b.xattr('', 'user.root', 'on the root');
  // No xattrs on symlinks: mksquashfs 4.5.1 silently drops them, so they could not be ground truth.
  return { xattrBig, xattrShared };
}

/** mtimes are all set explicitly, and last: creating entries changes directory mtimes. */
async function setMtimes(b: Builder, fifo: string): Promise<Record<string, number>> {
  // ---- mtimes: all set explicitly, last (creating entries changes directory mtimes) ---------
  b.dir('mtimes');
  const mtimes: Record<string, number> = {};
  for (const [name, t] of Object.entries(SPECIAL_MTIMES)) {
    mtimes[b.file(`mtimes/file-${name}`, name)] = t;
  }
  mtimes[b.dir('mtimes/dir-zero')] = 0;
  mtimes[b.dir('mtimes/dir-max')] = SPECIAL_MTIMES.maxU32;
  mtimes[b.symlink('mtimes/link-zero', 'file-zero')] = 0;
  mtimes[b.symlink('mtimes/link-3e9', 'file-u32_3e9')] = SPECIAL_MTIMES.u32_3e9;
  mtimes[fifo] = SPECIAL_MTIMES.maxU32;
  mtimes['/'] = SPECIAL_MTIMES.int32PlusOne + 12345;

  for (const rel of b.created) {
    const k = b.key(rel);
    const t = mtimes[k] ?? defaultMtime(k);
    lutimesSync(b.abs(rel), t, t);
  }
  lutimesSync(b.root, mtimes['/']!, mtimes['/']!);

  return mtimes;
}

/**
 * Create the test tree in `dir` (created if missing; must be empty). Needs root (chown, mknod,
 * trusted.* xattrs). Takes ~1-2 s without `big`.
 */
export async function generateTree(dir: string, opts: TreeOptions = {}): Promise<TreeInfo> {
  const big = opts.big ?? false;
  const medium = opts.medium ?? true;
  mkdirSync(dir, { recursive: true });
  if (readdirSync(dir).length > 0) throw new TreeGenerationError(`${dir} is not empty`);
  chmodSync(dir, 0o755);
  const b = new Builder(dir);
  let seed = 1000;
  const seeds: Seeds = { next: () => seed++ };

  const regular = addRegularFiles(b, seeds);
  const large = addLargeFiles(b, medium, big);
  const dir700 = addManyEntries(b);
  const deepLeaf = addDeepNesting(b);
  const names = addNames(b);
  const symlinks = addSymlinks(b);
  const hardlinks = addHardLinks(b, seeds);
  const specials = await addSpecialFiles(b);
  const perms = addPermissions(b);
  const owners = await addOwners(b);
  const xattrs = addXattrs(b, seeds);
  const emptyDir = b.dir('empty-dir');
  await setXattrs(b.xattrs);
  const mtimes = await setMtimes(b, specials.fifo);
  return {
    root: resolve(dir),
    big,
    medium,
    entryCount: b.created.length,
    apparentBytes: b.apparentBytes,
    paths: {
      ...regular,
      ...large,
      dir700,
      deepLeaf,
      ...names,
      symlinks,
      hardlinks,
      ...specials,
      ...perms,
      owners,
      ...xattrs,
      emptyDir,
      mtimes,
    },
  };
}
