/**
 * The FUSE protocol state of one mount: decodes each request the kernel sent, calls the
 * FileSystem, encodes exactly one reply (none for FORGET/BATCH_FORGET/INTERRUPT), and keeps
 * the lookup counts. It does no I/O of its own: the loop that owns /dev/fuse hands it request
 * bytes and a writer, so the same code runs in a worker thread, on the main thread, or in a test.
 */
import { Errno, FuseErrno } from './errno.js';
import type { DirEntry, FileSystem, OpenResult } from './filesystem.js';
import { describeError, type Log } from './log.js';
import type { Stats } from './stats.js';
import { decodeAccessIn } from './wire/access.js';
import { ATTR_OUT_SIZE, decodeGetattrIn, ENTRY_OUT_SIZE, encodeAttrOut, encodeEntryOut, type EntryOut } from './wire/attr.js';
import { readCString, type Timeout, toTimeout } from './wire/bytes.js';
import { direntplusSize, direntSize, direntTypeOf, encodeDirent, encodeDirentplus, invalidDirentName } from './wire/dirent.js';
import { decodeBatchForgetIn, decodeForgetIn } from './wire/forget.js';
import { decodeInHeader, encodeOutHeader, IN_HEADER_SIZE, type InHeader, OUT_HEADER_SIZE } from './wire/header.js';
import { decodeInitIn, encodeInitOut, InitFlag, initFlagNames, initOutSizeFor, INIT_OUT_SIZE, KERNEL_VERSION, SERVER_MINOR } from './wire/init.js';
import { decodeOpenIn, decodeReadIn, decodeReleaseIn, encodeOpenOut, OPEN_OUT_SIZE, OpenFlag } from './wire/open.js';
import { decodeLseekIn, encodeLseekOut, LSEEK_OUT_SIZE, SEEK_DATA, SEEK_HOLE } from './wire/lseek.js';
import { MUTATING_OPCODES, NO_REPLY_OPCODES, Opcode, opcodeName } from './wire/opcodes.js';
import { encodeStatfsOut, type Statfs, STATFS_OUT_SIZE } from './wire/statfs.js';
import { decodeGetxattrIn, encodeGetxattrOut, GETXATTR_OUT_SIZE } from './wire/xattr.js';

export type ReaddirplusMode = 'auto' | 'always' | 'never';

/** Plain data, so that it can be sent to worker threads. */
export interface SessionConfig {
  /** Seconds the kernel may cache a name → node mapping. */
  entryTimeout: number;
  /** Seconds the kernel may cache attributes. */
  attrTimeout: number;
  /** Seconds the kernel may cache "no such name"; 0 ⇒ answer ENOENT (nothing cached). */
  negativeTimeout: number;
  /** 'auto': kernel picks READDIRPLUS when it pays (READDIRPLUS_AUTO); 'always'; 'never'. */
  readdirplus: ReaddirplusMode;
  /** Max pages per request (256 ⇒ 1 MiB READs). */
  maxPages: number;
  /** Kernel limit on outstanding background requests (readahead READs). */
  maxBackground: number;
  congestionThreshold: number;
  /** Log every request and its result. */
  debug: boolean;
}

export const DEFAULT_SESSION_CONFIG: SessionConfig = {
  entryTimeout: 86_400,
  attrTimeout: 86_400,
  negativeTimeout: 86_400,
  readdirplus: 'auto',
  maxPages: 256,
  maxBackground: 64,
  congestionThreshold: 48,
  debug: false,
};

/** Largest request this server asks the kernel to send (no writes arrive on a read-only mount). */
export const MAX_WRITE = 128 * 1024;
/** Read buffer for /dev/fuse: the kernel needs >= max(8 KiB, 80 + max_write). */
export const REQUEST_BUFFER_SIZE = MAX_WRITE + 4096;
/** Upper bound for one READ/READDIR payload, whatever the kernel asks. */
const MAX_REPLY_PAYLOAD = 16 * 1024 * 1024;

/** Sends one reply: all buffers in a single write(v). Throws the write error (errno in `code`). */
export type ReplyWriter = (buffers: Buffer[]) => void;

/** Hands a READ to another thread; false ⇒ not taken (queue full), answer it here. */
export type ReadForwarder = (unique: bigint, nodeid: bigint, fh: bigint, offset: bigint, size: number) => boolean;

const O_ACCMODE = 3;
const O_RDONLY = 0;

function isFuseErrno(err: unknown): err is FuseErrno {
  // Duck-typed too: a FileSystem module may have loaded its own copy of this package.
  return err instanceof FuseErrno || (err instanceof Error && err.name === 'FuseErrno' && typeof (err as FuseErrno).errno === 'number');
}

/** Maps an exception thrown by a FileSystem method to an errno, logging the unexpected ones. */
export function errnoOf(err: unknown, what: string, log: Log, stats?: Stats): number {
  if (isFuseErrno(err) && err.errno > 0 && err.errno < 1000) return err.errno;
  stats?.failure();
  log(`${what} failed, answering EIO: ${describeError(err)}`);
  return Errno.EIO;
}

/**
 * Answers one READ: used by the session thread and by read workers alike. Never throws;
 * returns false when the device is gone (ENODEV) and the caller should stop.
 */
export function serveRead(
  fs: FileSystem,
  write: ReplyWriter,
  header: Buffer,
  unique: bigint,
  nodeid: bigint,
  fh: bigint,
  offset: bigint,
  size: number,
  log: Log,
  stats?: Stats,
): boolean {
  let errno = 0;
  let data: Buffer | undefined;
  try {
    const want = Math.min(size, MAX_REPLY_PAYLOAD);
    if (offset > BigInt(Number.MAX_SAFE_INTEGER) || want === 0) {
      data = Buffer.alloc(0);
    } else {
      data = fs.read(nodeid, fh, Number(offset), want);
      if (!Buffer.isBuffer(data)) throw new TypeError(`read() returned ${typeof data}, not a Buffer`);
      if (data.length > want) data = data.subarray(0, want);
    }
  } catch (err) {
    errno = errnoOf(err, `READ node ${nodeid} fh ${fh} offset ${offset} size ${size}`, log, stats);
  }
  if (errno !== 0 || data === undefined) {
    stats?.error();
    encodeOutHeader(header, 0, OUT_HEADER_SIZE, errno || Errno.EIO, unique);
    return sendReply(write, [header.subarray(0, OUT_HEADER_SIZE)], log);
  }
  stats?.readBytes(data.length);
  encodeOutHeader(header, 0, OUT_HEADER_SIZE + data.length, 0, unique);
  return sendReply(write, data.length > 0 ? [header.subarray(0, OUT_HEADER_SIZE), data] : [header.subarray(0, OUT_HEADER_SIZE)], log);
}

/** Writes a reply; false ⇒ ENODEV (connection gone). ENOENT (request was interrupted) is ignored. */
export function sendReply(write: ReplyWriter, buffers: Buffer[], log: Log): boolean {
  try {
    write(buffers);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return true; // the kernel no longer waits for this request
    if (code === 'ENODEV' || code === 'ECONNABORTED' || code === 'EBADF') return false;
    log(`writing a reply failed: ${describeError(err)}`);
    return true;
  }
}

export interface NegotiatedInit {
  readonly kernelMajor: number;
  readonly kernelMinor: number;
  readonly minor: number;
  readonly kernelFlags: bigint;
  readonly flags: bigint;
  readonly maxReadahead: number;
}

export class Session {
  private initialized = false;
  private ended = false;
  private readonly lookups = new Map<bigint, number>();
  private readonly entryValid: Timeout;
  private readonly attrValid: Timeout;
  private readonly negativeValid: Timeout;
  /** Reused for every reply: the writer is synchronous, so one buffer per session suffices. */
  private scratch = Buffer.alloc(64 * 1024);
  private readonly readHeader = Buffer.alloc(OUT_HEADER_SIZE);
  /**
   * OPEN was answered ENOSYS, so the kernel opens files without asking (and sends no RELEASE):
   * READ and LSEEK then carry fh 0, and the node id stands in for it (see skipsOpen).
   */
  private openless = false;
  /** What INIT agreed on (undefined before INIT). */
  negotiated: NegotiatedInit | undefined;

  constructor(
    private readonly fs: FileSystem,
    private readonly config: SessionConfig,
    private readonly write: ReplyWriter,
    private readonly log: Log,
    private readonly stats?: Stats,
    private readonly forwardRead?: ReadForwarder,
  ) {
    this.entryValid = toTimeout(config.entryTimeout);
    this.attrValid = toTimeout(config.attrTimeout);
    this.negativeValid = toTimeout(config.negativeTimeout);
  }

  /** True once the kernel connection is gone (a write saw ENODEV) or INIT failed. */
  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * Number of nodes the kernel currently holds references to (for tests and diagnostics);
   * counted only for a FileSystem that has forget().
   */
  get liveNodes(): number {
    return this.lookups.size;
  }

  lookupCount(node: bigint): number {
    return this.lookups.get(node) ?? 0;
  }

  /**
   * Handles one request: the first `length` bytes of `request` (all of it by default) are what
   * one read(2) on /dev/fuse returned. The loops pass their read buffer and the count: a view per
   * request cost a visible share of a fresh server's first thousands of requests.
   */
  handle(request: Buffer, length = request.length): void {
    let h: InHeader;
    try {
      if (length < IN_HEADER_SIZE || length > request.length) throw new RangeError(`${length} bytes`);
      h = decodeInHeader(request);
    } catch (err) {
      this.log(`dropping unparsable request of ${length} bytes: ${describeError(err)}`);
      return;
    }
    this.stats?.request(h.opcode);
    if (h.len !== length || h.totalExtlen * 8 > h.len - IN_HEADER_SIZE) {
      this.log(`${opcodeName(h.opcode)} unique ${h.unique}: header says ${h.len} bytes, read returned ${length}`);
      if (!NO_REPLY_OPCODES.has(h.opcode)) this.replyError(h, Errno.EIO);
      return;
    }
    const body = request.subarray(IN_HEADER_SIZE, h.len - h.totalExtlen * 8);
    if (this.config.debug) this.log(`<- ${opcodeName(h.opcode)} unique ${h.unique} node ${h.nodeid} len ${h.len}`);
    if (!this.initialized && h.opcode !== Opcode.INIT) {
      if (!NO_REPLY_OPCODES.has(h.opcode)) this.replyError(h, Errno.EIO);
      return;
    }
    try {
      this.dispatch(h, body);
    } catch (err) {
      const errno = errnoOf(err, `${opcodeName(h.opcode)} node ${h.nodeid}`, this.log, this.stats);
      if (!NO_REPLY_OPCODES.has(h.opcode)) this.replyError(h, errno);
    }
  }

  private dispatch(h: InHeader, body: Buffer): void {
    switch (h.opcode) {
      case Opcode.INIT:
        return this.doInit(h, body);
      case Opcode.LOOKUP:
        return this.doLookup(h, body);
      case Opcode.FORGET:
        this.forget(h.nodeid, decodeForgetIn(body));
        return;
      case Opcode.BATCH_FORGET:
        for (const one of decodeBatchForgetIn(body)) this.forget(one.nodeid, one.nlookup);
        return;
      case Opcode.GETATTR:
        decodeGetattrIn(body); // fh is not needed: attributes depend on the node only
        return this.replyAttr(h, this.fs.getattr(h.nodeid));
      case Opcode.READLINK:
        return this.doReadlink(h);
      case Opcode.OPEN:
        return this.doOpen(h, body);
      case Opcode.READ:
        return this.doRead(h, body);
      case Opcode.LSEEK:
        return this.doLseek(h, body);
      case Opcode.RELEASE: {
        const r = decodeReleaseIn(body);
        this.fs.release?.(h.nodeid, r.fh);
        return this.replyEmpty(h);
      }
      case Opcode.OPENDIR:
        return this.doOpendir(h, body);
      case Opcode.READDIR:
        return this.doReaddir(h, body, false);
      case Opcode.READDIRPLUS:
        return this.doReaddir(h, body, true);
      case Opcode.RELEASEDIR: {
        const r = decodeReleaseIn(body);
        this.fs.releasedir?.(h.nodeid, r.fh);
        return this.replyEmpty(h);
      }
      case Opcode.STATFS:
        return this.doStatfs(h);
      case Opcode.GETXATTR:
        return this.doGetxattr(h, body);
      case Opcode.LISTXATTR:
        return this.doListxattr(h, body);
      case Opcode.ACCESS: {
        const mask = decodeAccessIn(body);
        // A write check on a read-only image fails whatever the permissions say.
        if ((mask & 2) !== 0) return this.replyError(h, Errno.EROFS);
        this.fs.access?.(h.nodeid, mask);
        return this.replyEmpty(h);
      }
      case Opcode.FLUSH:
        // Nothing to write back on a read-only mount: ENOSYS makes the kernel stop sending a
        // FLUSH on every close (fc->no_flush); close(2) still returns 0.
        return this.replyError(h, Errno.ENOSYS);
      case Opcode.INTERRUPT:
        // Every request is answered promptly anyway; the target still gets its one reply.
        return;
      case Opcode.DESTROY:
        // fuseblk only. The kernel aborts the connection next; the read loop sees ENODEV
        // and the loop's owner closes the FileSystem.
        return this.replyEmpty(h);
      default:
        return this.replyError(h, MUTATING_OPCODES.has(h.opcode) ? Errno.EROFS : Errno.ENOSYS);
    }
  }

  // --- INIT ------------------------------------------------------------------------------

  private doInit(h: InHeader, body: Buffer): void {
    const init = decodeInitIn(body);
    if (init.major < KERNEL_VERSION) {
      this.log(`kernel speaks FUSE ${init.major}.${init.minor}; this server needs 7.x`);
      this.replyError(h, Errno.EPROTO);
      this.ended = true;
      return;
    }
    if (init.major > KERNEL_VERSION) {
      // The kernel then sends a second INIT with major 7.
      this.sendInit(h, init.maxReadahead, 0n, INIT_OUT_SIZE);
      return;
    }
    let wanted =
      InitFlag.ASYNC_READ | InitFlag.BIG_WRITES | InitFlag.MAX_PAGES | InitFlag.PARALLEL_DIROPS | InitFlag.CACHE_SYMLINKS;
    if (this.config.readdirplus !== 'never') wanted |= InitFlag.DO_READDIRPLUS;
    if (this.config.readdirplus === 'auto') wanted |= InitFlag.READDIRPLUS_AUTO;
    // Only answer with bits the kernel offered; flags2 exists only when it offered INIT_EXT.
    let flags = wanted & init.flags & 0xffff_ffffn;
    if ((init.flags & InitFlag.INIT_EXT) !== 0n) flags |= InitFlag.INIT_EXT;
    const minor = Math.min(init.minor, SERVER_MINOR);
    this.negotiated = {
      kernelMajor: init.major,
      kernelMinor: init.minor,
      minor,
      kernelFlags: init.flags,
      flags,
      maxReadahead: init.maxReadahead,
    };
    if (this.config.debug) {
      this.log(`INIT kernel ${init.major}.${init.minor} offers ${initFlagNames(init.flags).join(',')}`);
      this.log(`INIT reply 7.${minor} flags ${initFlagNames(flags).join(',')}`);
    }
    if (this.sendInit(h, init.maxReadahead, flags, initOutSizeFor(init.minor))) this.initialized = true;
  }

  private sendInit(h: InHeader, maxReadahead: number, flags: bigint, size: number): boolean {
    const buf = this.scratch;
    encodeInitOut(buf, OUT_HEADER_SIZE, {
      major: KERNEL_VERSION,
      minor: Math.min(SERVER_MINOR, this.negotiated?.kernelMinor ?? SERVER_MINOR),
      maxReadahead,
      flags,
      maxBackground: this.config.maxBackground,
      congestionThreshold: this.config.congestionThreshold,
      maxWrite: MAX_WRITE,
      timeGran: 1,
      maxPages: this.config.maxPages,
    });
    return this.replyScratch(h, size);
  }

  // --- names and attributes --------------------------------------------------------------

  private doLookup(h: InHeader, body: Buffer): void {
    const name = readCString(body, 0, 'LOOKUP');
    const entry = this.fs.lookup(h.nodeid, name);
    if (entry === undefined) {
      if (this.negativeValid.sec === 0 && this.negativeValid.nsec === 0) return this.replyError(h, Errno.ENOENT);
      encodeEntryOut(this.scratch, OUT_HEADER_SIZE, {
        nodeid: 0n,
        generation: 0n,
        entryValid: this.negativeValid,
        attrValid: { sec: 0, nsec: 0 },
        attr: undefined,
      });
      this.replyScratch(h, ENTRY_OUT_SIZE);
      return;
    }
    if (entry.nodeid === 0n) throw new Error(`lookup of ${JSON.stringify(name.toString())} returned node id 0`);
    encodeEntryOut(this.scratch, OUT_HEADER_SIZE, this.entryOut(entry.nodeid, entry.generation, entry.attr));
    // Count only once the kernel has the reply: if it was interrupted, it holds no reference.
    if (this.replyScratch(h, ENTRY_OUT_SIZE)) this.addLookup(entry.nodeid);
  }

  private entryOut(nodeid: bigint, generation: bigint | undefined, attr: EntryOut['attr']): EntryOut {
    return { nodeid, generation: generation ?? 0n, entryValid: this.entryValid, attrValid: this.attrValid, attr };
  }

  private addLookup(node: bigint): void {
    // Counts exist only to call fs.forget at the right time. A FileSystem without forget (ids
    // derived from the data, nothing to free) skips them: a Map keyed by BigInt per entry was a
    // visible share of the server's CPU in a cold `find -ls`.
    if (this.fs.forget === undefined) return;
    this.lookups.set(node, (this.lookups.get(node) ?? 0) + 1);
  }

  private forget(node: bigint, nlookup: bigint): void {
    if (this.fs.forget === undefined) return;
    const count = this.lookups.get(node);
    if (count === undefined) return; // root, or a node counted before a restart: nothing to free
    const left = count - Number(nlookup);
    if (left > 0) {
      this.lookups.set(node, left);
      return;
    }
    this.lookups.delete(node);
    try {
      this.fs.forget?.(node);
    } catch (err) {
      errnoOf(err, `FORGET node ${node}`, this.log, this.stats);
    }
  }

  private replyAttr(h: InHeader, attr: EntryOut['attr'] & object): void {
    encodeAttrOut(this.scratch, OUT_HEADER_SIZE, this.attrValid, attr);
    this.replyScratch(h, ATTR_OUT_SIZE);
  }

  private doReadlink(h: InHeader): void {
    if (!this.fs.readlink) return this.replyError(h, Errno.EINVAL);
    const target = this.fs.readlink(h.nodeid);
    if (!Buffer.isBuffer(target) || target.length === 0) throw new Error('readlink() must return a non-empty Buffer');
    this.replyBuffers(h, [target]);
  }

  // --- files -----------------------------------------------------------------------------

  private doOpen(h: InHeader, body: Buffer): void {
    const o = decodeOpenIn(body);
    if ((o.flags & O_ACCMODE) !== O_RDONLY) return this.replyError(h, Errno.EROFS);
    const r = this.fs.open ? this.fs.open(h.nodeid, o.flags) : { fh: 0n };
    if (this.skipsOpen(h.nodeid, r)) {
      this.openless = true;
      return this.replyError(h, Errno.ENOSYS);
    }
    let openFlags = 0;
    if (r.keepCache ?? this.fs.immutable === true) openFlags |= OpenFlag.KEEP_CACHE;
    if (r.directIo) openFlags |= OpenFlag.DIRECT_IO;
    encodeOpenOut(this.scratch, OUT_HEADER_SIZE, { fh: r.fh, openFlags });
    if (!this.replyScratch(h, OPEN_OUT_SIZE)) this.fs.release?.(h.nodeid, r.fh);
  }

  /**
   * Whether OPEN can be left to the kernel: a FileSystem whose content never changes, whose
   * handle for this file is the node id itself and that keeps no per-open state (no release)
   * loses nothing when the kernel opens files on its own, with the page cache kept
   * (FOPEN_KEEP_CACHE is the kernel's default then). Answering ENOSYS once (kernels that offer
   * NO_OPEN_SUPPORT) saves an OPEN and a RELEASE on every later open(2): a third of the requests
   * of reading many small files.
   */
  private skipsOpen(nodeid: bigint, r: OpenResult): boolean {
    return (
      this.fs.immutable === true &&
      this.fs.release === undefined &&
      r.fh === nodeid &&
      r.keepCache !== false &&
      r.directIo !== true &&
      ((this.negotiated?.kernelFlags ?? 0n) & InitFlag.NO_OPEN_SUPPORT) !== 0n
    );
  }

  private doRead(h: InHeader, body: Buffer): void {
    const r = decodeReadIn(body);
    const fh = this.openless && r.fh === 0n ? h.nodeid : r.fh;
    if (this.forwardRead?.(h.unique, h.nodeid, fh, r.offset, r.size)) {
      this.stats?.forwarded();
      return;
    }
    if (!serveRead(this.fs, this.write, this.readHeader, h.unique, h.nodeid, fh, r.offset, r.size, this.log, this.stats)) {
      this.ended = true;
    }
  }

  private doLseek(h: InHeader, body: Buffer): void {
    // ENOSYS makes the kernel stop asking and treat every file as one data extent.
    if (!this.fs.lseek) return this.replyError(h, Errno.ENOSYS);
    const r = decodeLseekIn(body);
    if (r.whence !== SEEK_DATA && r.whence !== SEEK_HOLE) return this.replyError(h, Errno.EINVAL);
    // Past any file we serve (and negative offsets, which arrive as u64 >= 2^63).
    if (r.offset > BigInt(Number.MAX_SAFE_INTEGER)) return this.replyError(h, Errno.ENXIO);
    const fh = this.openless && r.fh === 0n ? h.nodeid : r.fh;
    const pos = this.fs.lseek(h.nodeid, fh, Number(r.offset), r.whence === SEEK_DATA ? 'data' : 'hole');
    encodeLseekOut(this.scratch, OUT_HEADER_SIZE, pos);
    this.replyScratch(h, LSEEK_OUT_SIZE);
  }

  // --- directories -----------------------------------------------------------------------

  private doOpendir(h: InHeader, body: Buffer): void {
    const o = decodeOpenIn(body);
    // The same for directories (kernels offering NO_OPENDIR_SUPPORT): a FileSystem without
    // opendir/releasedir keeps no per-open state, and the kernel's default for an open it was
    // not asked about is CACHE_DIR | KEEP_CACHE, what an immutable one answers anyway. Saves an
    // OPENDIR and a RELEASEDIR per directory listed.
    if (
      this.fs.immutable === true &&
      this.fs.opendir === undefined &&
      this.fs.releasedir === undefined &&
      ((this.negotiated?.kernelFlags ?? 0n) & InitFlag.NO_OPENDIR_SUPPORT) !== 0n
    ) {
      return this.replyError(h, Errno.ENOSYS);
    }
    const r = this.fs.opendir ? this.fs.opendir(h.nodeid, o.flags) : { fh: 0n };
    let openFlags = 0;
    // KEEP_CACHE too: without it the kernel drops the directory's cached listing on every
    // opendir (fuse_dir_open invalidates the mapping), so CACHE_DIR alone never serves a hit.
    if (r.cacheDir ?? this.fs.immutable === true) openFlags |= OpenFlag.CACHE_DIR | OpenFlag.KEEP_CACHE;
    encodeOpenOut(this.scratch, OUT_HEADER_SIZE, { fh: r.fh, openFlags });
    if (!this.replyScratch(h, OPEN_OUT_SIZE)) this.fs.releasedir?.(h.nodeid, r.fh);
  }

  private doReaddir(h: InHeader, body: Buffer, plus: boolean): void {
    const r = decodeReadIn(body);
    const limit = Math.min(r.size, MAX_REPLY_PAYLOAD);
    this.ensureScratch(OUT_HEADER_SIZE + limit);
    const buf = this.scratch;
    let pos = OUT_HEADER_SIZE;
    const counted: bigint[] = [];
    for (const e of this.fs.readdir(h.nodeid, r.fh, r.offset, plus) as Iterable<DirEntry>) {
      const bad = invalidDirentName(e.name);
      if (bad !== undefined) {
        // The kernel would fail the whole listing with EIO; hide just this entry.
        this.log(`READDIR node ${h.nodeid}: skipping entry ${JSON.stringify(e.name.toString())}: ${bad}`);
        continue;
      }
      if (e.cookie === 0n) throw new Error(`readdir entry ${JSON.stringify(e.name.toString())} has cookie 0`);
      const size = plus ? direntplusSize(e.name.length) : direntSize(e.name.length);
      if (pos - OUT_HEADER_SIZE + size > limit) break;
      const dirent = { ino: e.ino, off: e.cookie, type: direntTypeOf(e.mode), name: e.name };
      if (plus) {
        const entry = e.entry;
        if (entry && entry.nodeid !== 0n) {
          pos += encodeDirentplus(buf, pos, this.entryOut(entry.nodeid, entry.generation, entry.attr), dirent);
          if (!isDotOrDotDot(e.name)) counted.push(entry.nodeid);
        } else {
          pos += encodeDirentplus(buf, pos, this.entryOut(0n, 0n, undefined), dirent);
        }
      } else {
        pos += encodeDirent(buf, pos, dirent);
      }
    }
    // The kernel links (and later forgets) every direntplus entry it received, except . and ..
    if (this.replyScratch(h, pos - OUT_HEADER_SIZE)) for (const node of counted) this.addLookup(node);
  }

  private doStatfs(h: InHeader): void {
    const s: Statfs = this.fs.statfs?.(h.nodeid) ?? {
      blocks: 0,
      bfree: 0,
      bavail: 0,
      files: 0,
      ffree: 0,
      bsize: 4096,
      namelen: 255,
      frsize: 4096,
    };
    encodeStatfsOut(this.scratch, OUT_HEADER_SIZE, s);
    this.replyScratch(h, STATFS_OUT_SIZE);
  }

  // --- xattrs ----------------------------------------------------------------------------

  private doGetxattr(h: InHeader, body: Buffer): void {
    if (!this.fs.getxattr) return this.replyError(h, Errno.ENOSYS);
    const req = decodeGetxattrIn(body, true);
    const value = this.fs.getxattr(h.nodeid, req.name);
    if (value === undefined) return this.replyError(h, Errno.ENODATA);
    this.replySized(h, req.size, [value], value.length);
  }

  private doListxattr(h: InHeader, body: Buffer): void {
    if (!this.fs.listxattr) return this.replyError(h, Errno.ENOSYS);
    const req = decodeGetxattrIn(body, false);
    const parts: Buffer[] = [];
    let total = 0;
    const nul = Buffer.alloc(1);
    for (const name of this.fs.listxattr(h.nodeid)) {
      if (name.length === 0 || name.includes(0)) throw new Error('listxattr() returned an empty name or one containing NUL');
      parts.push(name, nul);
      total += name.length + 1;
    }
    this.replySized(h, req.size, parts, total);
  }

  /** The getxattr/listxattr size protocol: size 0 asks for the length; too small ⇒ ERANGE. */
  private replySized(h: InHeader, size: number, parts: Buffer[], total: number): void {
    if (size === 0) {
      encodeGetxattrOut(this.scratch, OUT_HEADER_SIZE, total);
      this.replyScratch(h, GETXATTR_OUT_SIZE);
    } else if (total > size) {
      this.replyError(h, Errno.ERANGE);
    } else {
      this.replyBuffers(h, parts);
    }
  }

  // --- reply plumbing --------------------------------------------------------------------

  private ensureScratch(size: number): void {
    if (this.scratch.length < size) this.scratch = Buffer.alloc(Math.max(size, this.scratch.length * 2));
  }

  private send(buffers: Buffer[]): boolean {
    if (this.ended) return false;
    const ok = sendReply(this.write, buffers, this.log);
    if (!ok) this.ended = true;
    return ok;
  }

  /** Reply whose payload was encoded at scratch[16 .. 16+payload). */
  private replyScratch(h: InHeader, payload: number): boolean {
    const len = OUT_HEADER_SIZE + payload;
    encodeOutHeader(this.scratch, 0, len, 0, h.unique);
    if (this.config.debug) this.log(`-> ${opcodeName(h.opcode)} unique ${h.unique} ok ${payload} bytes`);
    return this.send([this.scratch.subarray(0, len)]);
  }

  private replyBuffers(h: InHeader, parts: Buffer[]): boolean {
    let payload = 0;
    for (const p of parts) payload += p.length;
    const header = Buffer.alloc(OUT_HEADER_SIZE);
    encodeOutHeader(header, 0, OUT_HEADER_SIZE + payload, 0, h.unique);
    if (this.config.debug) this.log(`-> ${opcodeName(h.opcode)} unique ${h.unique} ok ${payload} bytes`);
    return this.send([header, ...parts]);
  }

  private replyEmpty(h: InHeader): void {
    this.replyScratch(h, 0);
  }

  private replyError(h: InHeader, errno: number): void {
    this.stats?.error();
    if (this.config.debug) this.log(`-> ${opcodeName(h.opcode)} unique ${h.unique} error ${errno}`);
    encodeOutHeader(this.scratch, 0, OUT_HEADER_SIZE, errno, h.unique);
    this.send([this.scratch.subarray(0, OUT_HEADER_SIZE)]);
  }
}

function isDotOrDotDot(name: Buffer): boolean {
  return (name.length === 1 && name[0] === 0x2e) || (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e);
}
