/**
 * Protocol-level tests of Session with hand-built requests (no kernel): INIT negotiation,
 * lookup counting, READDIR(PLUS) packing, the xattr size protocol, error mapping and
 * malformed input. The byte layouts follow fuse_kernel.h (formats.md part D).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Errno, FuseErrno, InitFlag, Opcode, Session, DEFAULT_SESSION_CONFIG, type SessionConfig } from '../src/index.js';
import { decodeAttrOut, decodeEntryOut } from '../src/wire/attr.js';
import { decodeDirentplusList, decodeDirents } from '../src/wire/dirent.js';
import { decodeOutHeader, encodeInHeader } from '../src/wire/header.js';
import { decodeInitOut } from '../src/wire/init.js';
import { decodeOpenOut, encodeReadIn, OpenFlag } from '../src/wire/open.js';
import { decodeStatfsOut } from '../src/wire/statfs.js';
import { buildNodes, MemFs, standardTree } from './memfs.js';

interface Reply {
  unique: bigint;
  error: number;
  payload: Buffer;
}

let nextUnique = 2n;

function request(opcode: number, nodeid: bigint, body: Buffer = Buffer.alloc(0), unique = (nextUnique += 2n)): Buffer {
  const buf = Buffer.alloc(40 + body.length);
  encodeInHeader(buf, 0, { len: buf.length, opcode, unique, nodeid, uid: 0, gid: 0, pid: 1, totalExtlen: 0 });
  body.copy(buf, 40);
  return buf;
}

function initBody(major: number, minor: number, flags: bigint): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(major, 0);
  b.writeUInt32LE(minor, 4);
  b.writeUInt32LE(131072, 8);
  b.writeUInt32LE(Number(flags & 0xffff_ffffn), 12);
  b.writeUInt32LE(Number(flags >> 32n), 16);
  return b;
}

function readBody(fh: bigint, offset: bigint, size: number): Buffer {
  const b = Buffer.alloc(40);
  encodeReadIn(b, 0, { fh, offset, size, readFlags: 0, lockOwner: 0n, flags: 0 });
  return b;
}

function nameBody(name: string): Buffer {
  return Buffer.concat([Buffer.from(name), Buffer.alloc(1)]);
}

function u32pair(a: number, b = 0): Buffer {
  const x = Buffer.alloc(8);
  x.writeUInt32LE(a, 0);
  x.writeUInt32LE(b, 4);
  return x;
}

const ALL_KERNEL_FLAGS = (1n << 43n) - 1n;

class Harness {
  readonly replies: Reply[] = [];
  readonly logs: string[] = [];
  readonly fs = new MemFs(standardTree());
  readonly session: Session;
  writeError: string | undefined;

  constructor(config: Partial<SessionConfig> = {}, init = true, kernelFlags = ALL_KERNEL_FLAGS) {
    this.session = new Session(
      this.fs,
      { ...DEFAULT_SESSION_CONFIG, ...config },
      (bufs) => {
        if (this.writeError) throw Object.assign(new Error(this.writeError), { code: this.writeError });
        const all = Buffer.concat(bufs);
        const h = decodeOutHeader(all);
        assert.equal(h.len, all.length, 'out header len equals bytes written');
        this.replies.push({ unique: h.unique, error: h.error, payload: all.subarray(16) });
      },
      (line) => this.logs.push(line),
    );
    if (init) this.call(Opcode.INIT, 0n, initBody(7, 45, kernelFlags));
  }

  /** Sends one request; returns its reply (asserting there is exactly one). */
  call(opcode: number, nodeid: bigint, body?: Buffer): Reply {
    const n = this.replies.length;
    const req = request(opcode, nodeid, body);
    this.session.handle(req);
    assert.equal(this.replies.length, n + 1, `one reply to opcode ${opcode}`);
    const r = this.replies[n]!;
    assert.equal(r.unique, req.readBigUInt64LE(8));
    return r;
  }

  noReply(opcode: number, nodeid: bigint, body?: Buffer): void {
    const n = this.replies.length;
    this.session.handle(request(opcode, nodeid, body));
    assert.equal(this.replies.length, n, `no reply to opcode ${opcode}`);
  }

  lookup(parent: bigint, name: string): Reply {
    return this.call(Opcode.LOOKUP, parent, nameBody(name));
  }
}

const nodes = buildNodes(standardTree());
const byPath = new Map(nodes.map((n) => [n.path, n]));
const id = (path: string): bigint => byPath.get(path)!.id;

describe('INIT', () => {
  it('answers 7.31 with only offered flags, INIT_EXT echoed, 1 MiB requests', () => {
    const h = new Harness({}, false);
    const r = h.call(Opcode.INIT, 0n, initBody(7, 45, ALL_KERNEL_FLAGS));
    assert.equal(r.error, 0);
    assert.equal(r.payload.length, 64);
    const o = decodeInitOut(r.payload);
    assert.equal(o.major, 7);
    assert.equal(o.minor, 31);
    assert.equal(o.maxPages, 256);
    assert.equal(o.maxWrite, 128 * 1024);
    assert.equal(o.timeGran, 1);
    assert.equal(o.maxReadahead, 131072);
    const want =
      InitFlag.ASYNC_READ |
      InitFlag.BIG_WRITES |
      InitFlag.MAX_PAGES |
      InitFlag.PARALLEL_DIROPS |
      InitFlag.CACHE_SYMLINKS |
      InitFlag.DO_READDIRPLUS |
      InitFlag.READDIRPLUS_AUTO |
      InitFlag.INIT_EXT;
    assert.equal(o.flags, want);
  });

  it('never claims a flag the kernel did not offer, nor INIT_EXT without it', () => {
    const h = new Harness({ readdirplus: 'always' }, false);
    const offered = InitFlag.ASYNC_READ | InitFlag.DO_READDIRPLUS | InitFlag.READDIRPLUS_AUTO;
    const o = decodeInitOut(h.call(Opcode.INIT, 0n, initBody(7, 45, offered)).payload);
    assert.equal(o.flags, InitFlag.ASYNC_READ | InitFlag.DO_READDIRPLUS);
  });

  it('sends the reply size an older kernel expects (24 bytes before 7.23)', () => {
    const h = new Harness({}, false);
    const r = h.call(Opcode.INIT, 0n, initBody(7, 22, InitFlag.ASYNC_READ));
    assert.equal(r.payload.length, 24);
    assert.equal(r.payload.readUInt32LE(4), 22, 'minor = the smaller of both');
  });

  it('asks a newer major to retry with 7, and refuses majors below 7', () => {
    const h = new Harness({}, false);
    const r = h.call(Opcode.INIT, 0n, initBody(8, 0, 0n));
    assert.equal(r.error, 0);
    assert.equal(decodeInitOut(r.payload).major, 7);
    assert.equal(h.call(Opcode.GETATTR, 1n).error, -Errno.EIO, 'still waiting for INIT');
    assert.equal(h.call(Opcode.INIT, 0n, initBody(7, 45, 0n)).error, 0);
    assert.equal(h.call(Opcode.GETATTR, 1n).error, 0);
    const old = new Harness({}, false);
    assert.equal(old.call(Opcode.INIT, 0n, initBody(6, 0, 0n)).error, -Errno.EPROTO);
    assert.equal(old.session.isEnded, true);
  });
});

describe('requests', () => {
  it('answers LOOKUP/GETATTR and counts lookups until FORGET/BATCH_FORGET', () => {
    const h = new Harness();
    const e = decodeEntryOut(h.lookup(1n, 'one').payload, 0);
    assert.equal(e.nodeid, id('one'));
    assert.equal(e.attr!.size, 1);
    assert.equal(e.entryValid.sec, 86400);
    h.lookup(1n, 'one');
    assert.equal(h.session.lookupCount(id('one')), 2);
    const forget = Buffer.alloc(8);
    forget.writeBigUInt64LE(1n);
    h.noReply(Opcode.FORGET, id('one'), forget);
    assert.equal(h.session.lookupCount(id('one')), 1);
    assert.deepEqual(h.fs.forgotten, []);
    const batch = Buffer.alloc(8 + 16);
    batch.writeUInt32LE(1, 0);
    batch.writeBigUInt64LE(id('one'), 8);
    batch.writeBigUInt64LE(1n, 16);
    h.noReply(Opcode.BATCH_FORGET, 0n, batch);
    assert.equal(h.session.lookupCount(id('one')), 0);
    assert.deepEqual(h.fs.forgotten, [id('one')]);
    const a = decodeAttrOut(h.call(Opcode.GETATTR, id('f4096'), Buffer.alloc(16)).payload, 0);
    assert.equal(a.attr.uid, 1234);
    assert.equal(a.attr.mode, 0o100600);
  });

  it('answers a missing name with a cached negative entry, or ENOENT when that timeout is 0', () => {
    const h = new Harness({ negativeTimeout: 30 });
    const r = h.lookup(1n, 'nope');
    assert.equal(r.error, 0);
    const e = decodeEntryOut(r.payload, 0);
    assert.equal(e.nodeid, 0n);
    assert.equal(e.entryValid.sec, 30);
    assert.equal(new Harness({ negativeTimeout: 0 }).lookup(1n, 'nope').error, -Errno.ENOENT);
    assert.equal(h.lookup(id('one'), 'x').error, -Errno.ENOTDIR, 'FuseErrno from the FileSystem');
  });

  it('packs READDIRPLUS into the requested size and resumes at the last cookie; . and .. are not counted', () => {
    const h = new Harness();
    const dir = id('dir700');
    const seen: string[] = [];
    let cookie = 0n;
    let calls = 0;
    for (;;) {
      const r = h.call(Opcode.READDIRPLUS, dir, readBody(0n, cookie, 4096));
      assert.equal(r.error, 0);
      assert.ok(r.payload.length <= 4096);
      if (r.payload.length === 0) break;
      calls++;
      const list = decodeDirentplusList(r.payload);
      for (const { entry, dirent } of list) {
        seen.push(dirent.name.toString());
        assert.equal(entry.nodeid, dirent.ino);
        assert.equal(dirent.type, (entry.attr!.mode & 0o170000) >> 12);
      }
      cookie = list.at(-1)!.dirent.off;
    }
    assert.deepEqual(seen, ['.', '..', ...byPath.get('dir700')!.children.map((c) => c.spec.name)]);
    assert.ok(calls > 20, `${calls} replies of at most 4096 bytes`);
    assert.equal(h.session.lookupCount(dir), 0, '. not counted');
    assert.equal(h.session.lookupCount(1n), 0, '.. not counted');
    assert.equal(h.session.liveNodes, 700);
  });

  it('packs plain READDIR records (8-byte aligned) exactly up to the size', () => {
    const h = new Harness();
    // ".", ".." → 32 bytes each; "entry-0000" (10) → 40 bytes each.
    const r = h.call(Opcode.READDIR, id('dir700'), readBody(0n, 0n, 32 + 32 + 40 * 3 + 39));
    const list = decodeDirents(r.payload);
    assert.deepEqual(
      list.map((d) => d.name.toString()),
      ['.', '..', 'entry-0000', 'entry-0001', 'entry-0002'],
    );
    assert.equal(r.payload.length, 32 + 32 + 40 * 3);
    assert.deepEqual(list.map((d) => d.type), [4, 4, 8, 8, 8], 'DT_DIR for . and .., DT_REG for files');
    assert.deepEqual(list.map((d) => d.off), [1n, 2n, 3n, 4n, 5n], 'cookies of the next entries');
    assert.equal(h.session.liveNodes, 0, 'plain READDIR links nothing');
  });

  it('implements the getxattr/listxattr size protocol', () => {
    const h = new Harness();
    const one = id('one');
    const ask = (size: number, name: string): Buffer => Buffer.concat([u32pair(size), nameBody(name)]);
    const probe = h.call(Opcode.GETXATTR, one, ask(0, 'user.big'));
    assert.equal(probe.payload.length, 8);
    assert.equal(probe.payload.readUInt32LE(0), 3000);
    assert.equal(h.call(Opcode.GETXATTR, one, ask(2999, 'user.big')).error, -Errno.ERANGE);
    const v = h.call(Opcode.GETXATTR, one, ask(3000, 'user.big'));
    assert.equal(v.payload.length, 3000);
    assert.equal(v.payload[1], 10);
    assert.equal(h.call(Opcode.GETXATTR, one, ask(100, 'user.none')).error, -Errno.ENODATA);
    const names = 'user.a\0user.big\0user.binary\0';
    assert.equal(h.call(Opcode.LISTXATTR, one, u32pair(0)).payload.readUInt32LE(0), names.length);
    assert.equal(h.call(Opcode.LISTXATTR, one, u32pair(names.length - 1)).error, -Errno.ERANGE);
    assert.equal(h.call(Opcode.LISTXATTR, one, u32pair(4096)).payload.toString(), names);
    assert.equal(h.call(Opcode.LISTXATTR, id('f4095'), u32pair(0)).payload.readUInt32LE(0), 0);
  });

  it('opens with KEEP_CACHE / CACHE_DIR for an immutable FileSystem and refuses write access', () => {
    // A kernel that cannot open without asking (no NO_OPEN_SUPPORT / NO_OPENDIR_SUPPORT).
    const h = new Harness({}, true, ALL_KERNEL_FLAGS & ~(InitFlag.NO_OPEN_SUPPORT | InitFlag.NO_OPENDIR_SUPPORT));
    const o = decodeOpenOut(h.call(Opcode.OPEN, id('one'), u32pair(0)).payload, 0);
    assert.equal(o.fh, id('one'));
    assert.equal(o.openFlags, OpenFlag.KEEP_CACHE);
    const d = decodeOpenOut(h.call(Opcode.OPENDIR, 1n, u32pair(0o200000)).payload, 0);
    // KEEP_CACHE on opendir keeps the cached listing across opens (the kernel drops it otherwise).
    assert.equal(d.openFlags, OpenFlag.CACHE_DIR | OpenFlag.KEEP_CACHE);
    assert.equal(h.call(Opcode.OPEN, id('one'), u32pair(1)).error, -Errno.EROFS);
    assert.equal(h.call(Opcode.OPEN, id('one'), u32pair(2)).error, -Errno.EROFS);
  });

  it('leaves OPEN and OPENDIR to the kernel when the FileSystem keeps no per-open state, reading by node id', () => {
    const h = new Harness();
    // MemFs counts opens (release): the kernel must keep asking for files.
    assert.equal(decodeOpenOut(h.call(Opcode.OPEN, id('one'), u32pair(0)).payload, 0).fh, id('one'));
    // No opendir/releasedir: ENOSYS, and the kernel opens directories with CACHE_DIR | KEEP_CACHE itself.
    assert.equal(h.call(Opcode.OPENDIR, 1n, u32pair(0o200000)).error, -Errno.ENOSYS);

    const g = new Harness();
    (g.fs as { release?: unknown }).release = undefined;
    assert.equal(g.call(Opcode.OPEN, id('one'), u32pair(1)).error, -Errno.EROFS);
    assert.equal(g.call(Opcode.OPEN, id('one'), u32pair(0)).error, -Errno.ENOSYS);
    // Later READs and LSEEKs carry fh 0: served as if the handle were the node id.
    const r = g.call(Opcode.READ, id('f4097'), readBody(0n, 4000n, 200));
    assert.equal(r.error, 0);
    assert.deepEqual(r.payload, g.fs.read(id('f4097'), id('f4097'), 4000, 97));

    // A handle that is not the node id is per-open state: OPEN stays.
    const k = new Harness();
    (k.fs as { release?: unknown }).release = undefined;
    k.fs.open = () => ({ fh: 7n });
    assert.equal(decodeOpenOut(k.call(Opcode.OPEN, id('one'), u32pair(0)).payload, 0).fh, 7n);
    // So does a kernel that does not offer NO_OPEN_SUPPORT.
    const old = new Harness({}, true, ALL_KERNEL_FLAGS & ~InitFlag.NO_OPEN_SUPPORT);
    (old.fs as { release?: unknown }).release = undefined;
    assert.equal(decodeOpenOut(old.call(Opcode.OPEN, id('one'), u32pair(0)).payload, 0).fh, id('one'));
  });

  it('reads, including past 2^53 and with a FileSystem returning too much', () => {
    const h = new Harness();
    const r = h.call(Opcode.READ, id('f4097'), readBody(id('f4097'), 4000n, 200));
    assert.equal(r.payload.length, 97);
    assert.equal(h.call(Opcode.READ, id('f4097'), readBody(id('f4097'), 1n << 60n, 10)).payload.length, 0);
    h.fs.read = () => Buffer.alloc(100);
    assert.equal(h.call(Opcode.READ, id('f4097'), readBody(id('f4097'), 0n, 10)).payload.length, 10);
  });

  it('answers EROFS to writes, ENOSYS to unknown/optional ops and FLUSH; no reply to INTERRUPT', () => {
    const h = new Harness();
    for (const op of [Opcode.SETATTR, Opcode.MKNOD, Opcode.MKDIR, Opcode.UNLINK, Opcode.RMDIR, Opcode.RENAME, Opcode.LINK, Opcode.SYMLINK, Opcode.WRITE, Opcode.CREATE, Opcode.SETXATTR, Opcode.REMOVEXATTR, Opcode.FALLOCATE, Opcode.RENAME2, Opcode.COPY_FILE_RANGE, Opcode.TMPFILE]) {
      assert.equal(h.call(op, 1n, Buffer.alloc(64)).error, -Errno.EROFS, `opcode ${op}`);
    }
    for (const op of [Opcode.STATX, Opcode.LSEEK, Opcode.IOCTL, Opcode.POLL, Opcode.BMAP, 999]) {
      assert.equal(h.call(op, 1n, Buffer.alloc(64)).error, -Errno.ENOSYS, `opcode ${op}`);
    }
    // ENOSYS once and the kernel stops flushing on close (close(2) still returns 0).
    assert.equal(h.call(Opcode.FLUSH, 1n, Buffer.alloc(24)).error, -Errno.ENOSYS);
    h.noReply(Opcode.INTERRUPT, 0n, Buffer.alloc(8));
    assert.equal(h.call(Opcode.ACCESS, 1n, u32pair(4)).error, 0);
    assert.equal(h.call(Opcode.ACCESS, 1n, u32pair(2)).error, -Errno.EROFS);
    const s = decodeStatfsOut(h.call(Opcode.STATFS, 1n).payload, 0);
    assert.equal(s.blocks, 123456);
    assert.equal(s.namelen, 255);
  });

  it('turns FileSystem bugs into EIO plus a log line, and survives malformed requests', () => {
    const h = new Harness();
    h.fs.getattr = () => {
      throw new TypeError('boom');
    };
    assert.equal(h.call(Opcode.GETATTR, 1n, Buffer.alloc(16)).error, -Errno.EIO);
    assert.ok(h.logs.some((l) => l.includes('boom')));
    h.fs.readlink = () => {
      throw new FuseErrno(Errno.EINVAL);
    };
    assert.equal(h.call(Opcode.READLINK, id('link')).error, -Errno.EINVAL);
    // Short bodies.
    assert.equal(h.call(Opcode.READ, 1n, Buffer.alloc(5)).error, -Errno.EIO);
    assert.equal(h.call(Opcode.LOOKUP, 1n, Buffer.from('no-nul')).error, -Errno.EIO);
    assert.equal(h.call(Opcode.GETXATTR, 1n, Buffer.alloc(3)).error, -Errno.EIO);
    const batch = Buffer.alloc(8);
    batch.writeUInt32LE(1_000_000, 0);
    h.noReply(Opcode.BATCH_FORGET, 0n, batch);
    // Header length disagreeing with the bytes read.
    const bad = request(Opcode.GETATTR, 1n, Buffer.alloc(16));
    bad.writeUInt32LE(9999, 0);
    h.session.handle(bad);
    assert.equal(h.replies.at(-1)!.error, -Errno.EIO);
    // Less than a header: dropped without a reply (no unique to answer).
    const n = h.replies.length;
    h.session.handle(Buffer.alloc(10));
    assert.equal(h.replies.length, n);
    assert.equal(h.session.isEnded, false);
  });

  it('logs every request and reply in debug mode', () => {
    const h = new Harness({ debug: true });
    h.lookup(1n, 'one');
    assert.ok(h.logs.some((l) => /^<- LOOKUP unique \d+ node 1 /.test(l)), h.logs.join('\n'));
    assert.ok(h.logs.some((l) => /^-> LOOKUP unique \d+ ok 128 bytes/.test(l)), h.logs.join('\n'));
    assert.ok(h.logs.some((l) => l.startsWith('INIT kernel 7.45 offers ')));
    assert.equal(new Harness().logs.length, 0, 'quiet by default');
  });

  it('ignores replies to interrupted requests (ENOENT) and stops on ENODEV', () => {
    const h = new Harness();
    h.writeError = 'ENOENT';
    h.session.handle(request(Opcode.GETATTR, 1n, Buffer.alloc(16)));
    assert.equal(h.session.isEnded, false);
    h.writeError = 'ENODEV';
    h.session.handle(request(Opcode.GETATTR, 1n, Buffer.alloc(16)));
    assert.equal(h.session.isEnded, true);
  });
});
