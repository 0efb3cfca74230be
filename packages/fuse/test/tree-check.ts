/**
 * Compares what the kernel shows at a mountpoint with the in-memory tree, using the kernel's
 * own syscalls (lstat, getdents via ls -f, readlink, read) and independent tools (getfattr,
 * sha256sum, stat -f).
 */
import assert from 'node:assert/strict';
import { closeSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { devMajor, devMinor } from '../src/index.js';
import { runOk } from './helpers.js';
import { type FileSpec, fileBytes, fileSha256, type MemNode } from './memfs.js';

export interface CheckOptions {
  /** uid/gid the kernel shows for a given tree uid (user namespaces map unknown ids to 65534). */
  mapId?: (id: number) => number;
}

export function pathOf(mp: string, n: MemNode): string {
  return n.path === '' ? mp : join(mp, n.path);
}

/** lstat of every node against its attributes (nanosecond times, devices, modes, owners). */
export function checkAttributes(mp: string, nodes: MemNode[], opts: CheckOptions = {}): void {
  const mapId = opts.mapId ?? ((id: number) => id);
  for (const n of nodes) {
    const st = lstatSync(pathOf(mp, n), { bigint: true });
    const a = n.attr;
    const where = `lstat ${n.path || '/'}`;
    assert.equal(st.ino, a.ino, `${where}: ino`);
    assert.equal(Number(st.mode), a.mode, `${where}: mode`);
    assert.equal(Number(st.nlink), a.nlink, `${where}: nlink`);
    assert.equal(Number(st.uid), mapId(a.uid), `${where}: uid`);
    assert.equal(Number(st.gid), mapId(a.gid), `${where}: gid`);
    assert.equal(Number(st.size), a.size, `${where}: size`);
    assert.equal(Number(st.blocks), a.blocks, `${where}: blocks`);
    assert.equal(Number(st.blksize), a.blksize, `${where}: blksize`);
    assert.equal(st.atimeNs, BigInt(a.atime) * 1_000_000_000n + BigInt(a.atimensec), `${where}: atime`);
    assert.equal(st.mtimeNs, BigInt(a.mtime) * 1_000_000_000n + BigInt(a.mtimensec), `${where}: mtime`);
    assert.equal(st.ctimeNs, BigInt(a.ctime) * 1_000_000_000n + BigInt(a.ctimensec), `${where}: ctime`);
    if (n.spec.type === 'chr' || n.spec.type === 'blk') {
      assert.equal(Number(st.rdev), a.rdev, `${where}: rdev`);
      assert.equal(devMajor(a.rdev), n.spec.major);
      assert.equal(devMinor(a.rdev), n.spec.minor);
    }
  }
}

/** Device numbers as coreutils stat(1) prints them (hex major:minor). */
export async function checkDevicesWithStatTool(mp: string, nodes: MemNode[]): Promise<void> {
  for (const n of nodes) {
    if (n.spec.type !== 'chr' && n.spec.type !== 'blk') continue;
    const out = (await runOk('stat', ['-c', '%F %t %T', pathOf(mp, n)])).trim();
    const kind = n.spec.type === 'chr' ? 'character special file' : 'block special file';
    assert.equal(out, `${kind} ${(n.spec.major ?? 0).toString(16)} ${(n.spec.minor ?? 0).toString(16)}`, `stat(1) of ${n.path}`);
  }
}

/** Directory listings in the server's order, including "." and "..", via `ls -f` (no sorting). */
export async function checkListings(mp: string, nodes: MemNode[]): Promise<void> {
  for (const n of nodes) {
    if (n.spec.type !== 'dir') continue;
    const dir = pathOf(mp, n);
    const out = await runOk('ls', ['-f', '-1', dir]);
    const names = out.split('\n').slice(0, -1);
    assert.deepEqual(names, ['.', '..', ...n.children.map((c) => c.spec.name)], `ls -f ${n.path || '/'}`);
    assert.deepEqual(readdirSync(dir).sort(), n.children.map((c) => c.spec.name).sort(), `readdir ${n.path || '/'}`);
    // d_type as getdents reports it (Node trusts it unless it is DT_UNKNOWN).
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const kind = d.isDirectory() ? 'dir' : d.isFile() ? 'file' : d.isSymbolicLink() ? 'symlink' : d.isFIFO() ? 'fifo' : d.isCharacterDevice() ? 'chr' : d.isBlockDevice() ? 'blk' : d.isSocket() ? 'sock' : '?';
      assert.equal(kind, n.byName.get(d.name)?.spec.type, `d_type of ${n.path}/${d.name}`);
    }
  }
}

export function checkSymlinks(mp: string, nodes: MemNode[]): void {
  for (const n of nodes) {
    if (n.spec.type !== 'symlink') continue;
    assert.equal(readlinkSync(pathOf(mp, n)), n.spec.target, `readlink ${n.path}`);
  }
}

/** Parses `getfattr -d -m - -e hex` output into path → (name → hex value). */
export function parseGetfattr(out: string): Map<string, Map<string, string>> {
  const result = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = new Map();
      result.set(line.slice('# file: '.length), current);
    } else if (line.trim() !== '' && current) {
      const eq = line.indexOf('=');
      const name = eq < 0 ? line : line.slice(0, eq);
      const value = eq < 0 ? '' : line.slice(eq + 1);
      current.set(name, value.startsWith('0x') ? value.slice(2) : value);
    }
  }
  return result;
}

/** Every xattr of every file and directory, as getfattr(1) sees them through the kernel. */
export async function checkXattrs(mp: string, nodes: MemNode[]): Promise<void> {
  const paths = nodes.filter((n) => n.spec.type === 'file' || n.spec.type === 'dir').map((n) => pathOf(mp, n));
  const out = await runOk('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', ...paths]);
  const seen = parseGetfattr(out);
  const expected = new Map<string, Map<string, string>>();
  for (const n of nodes) {
    if (n.xattrs.size === 0) continue;
    expected.set(pathOf(mp, n), new Map([...n.xattrs].map(([k, v]) => [k, v.toString('hex')])));
  }
  assert.deepEqual(seen, expected);
}

/** Content of every readable file: small ones byte-compared, large ones via sha256sum(1). */
export async function checkContent(mp: string, nodes: MemNode[]): Promise<void> {
  const big: [string, FileSpec][] = [];
  for (const n of nodes) {
    const spec = n.spec;
    if (spec.type !== 'file' || spec.fail) continue;
    if (spec.size > 256 * 1024) {
      big.push([pathOf(mp, n), spec]);
    } else {
      assert.ok(readFileSync(pathOf(mp, n)).equals(fileBytes(spec, 0, spec.size)), `content of ${n.path}`);
    }
  }
  const out = await runOk('sha256sum', big.map(([p]) => p));
  const sums = new Map(out.trim().split('\n').map((l) => [l.slice(66), l.slice(0, 64)] as [string, string]));
  for (const [p, spec] of big) assert.equal(sums.get(p), fileSha256(spec), `sha256 of ${p}`);
}

/** pread at awkward offsets and lengths, including across and past the end of file. */
export function checkOddReads(mp: string, nodes: MemNode[]): void {
  for (const n of nodes) {
    const spec = n.spec;
    if (spec.type !== 'file' || spec.fail || spec.size < 4096) continue;
    const fd = openSync(pathOf(mp, n), 'r');
    try {
      const probes: [number, number][] = [
        [0, 1],
        [1, 4095],
        [4095, 2],
        [4097, 131_073],
        [spec.size - 3, 10],
        [spec.size, 5],
        [spec.size + 100_000, 5],
        [Math.floor(spec.size / 3) + 7, 1_000_003],
        [Math.floor(spec.size / 2) + 1, 7],
      ];
      for (const [offset, length] of probes) {
        const buf = Buffer.alloc(length);
        let got = 0;
        // A read may return less than asked (page-cache boundaries); loop like a real reader.
        while (got < length) {
          const k = readSync(fd, buf, got, length - got, offset + got);
          if (k === 0) break;
          got += k;
        }
        const want = fileBytes(spec, offset, length);
        assert.equal(got, want.length, `${n.path} read @${offset}+${length}: length`);
        assert.ok(buf.subarray(0, got).equals(want), `${n.path} read @${offset}+${length}: bytes`);
      }
    } finally {
      closeSync(fd);
    }
  }
}
