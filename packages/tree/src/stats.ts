import { KIND_MODE, S_IFMT, type NodeAttr, type NodeKind } from './attr.js';

/** The is*() tests node:fs's Stats and Dirent share, over st_mode's file-type bits. */
abstract class FileType {
  protected abstract typeBits(): number;
  isFile(): boolean {
    return this.typeBits() === KIND_MODE.file;
  }
  isDirectory(): boolean {
    return this.typeBits() === KIND_MODE.dir;
  }
  isSymbolicLink(): boolean {
    return this.typeBits() === KIND_MODE.symlink;
  }
  isBlockDevice(): boolean {
    return this.typeBits() === KIND_MODE.block;
  }
  isCharacterDevice(): boolean {
    return this.typeBits() === KIND_MODE.char;
  }
  isFIFO(): boolean {
    return this.typeBits() === KIND_MODE.fifo;
  }
  isSocket(): boolean {
    return this.typeBits() === KIND_MODE.socket;
  }
}

/** node:fs.Stats-shaped attributes of an image entry (images keep one time: atime, ctime and birthtime mirror mtime, as the kernel shows). */
export class Stats extends FileType {
  readonly dev = 0;
  readonly ino: number;
  readonly mode: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  readonly rdev: number;
  readonly size: number;
  readonly blksize: number;
  readonly blocks: number;
  readonly atimeMs: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly birthtimeMs: number;
  readonly atime: Date;
  readonly mtime: Date;
  readonly ctime: Date;
  readonly birthtime: Date;
  /** Nanoseconds of the times (node:fs has them in its bigint form only). */
  readonly mtimeNsec: number;

  constructor(a: NodeAttr) {
    super();
    this.ino = a.ino;
    this.mode = a.mode;
    this.nlink = a.nlink;
    this.uid = a.uid;
    this.gid = a.gid;
    this.rdev = a.rdev;
    this.size = a.size;
    this.blksize = a.blksize;
    this.blocks = a.blocks;
    this.mtimeNsec = a.mtimeNsec;
    this.atimeMs = this.mtimeMs = this.ctimeMs = this.birthtimeMs = a.mtime * 1e3 + a.mtimeNsec / 1e6;
    this.atime = new Date(this.atimeMs);
    this.mtime = new Date(this.mtimeMs);
    this.ctime = new Date(this.ctimeMs);
    this.birthtime = new Date(this.birthtimeMs);
  }
  protected typeBits(): number {
    return this.mode & S_IFMT;
  }
}

/** node:fs.Dirent-shaped directory entry: a name and a type, from the listing alone. */
export class Dirent extends FileType {
  readonly name: string;
  constructor(
    /** The raw name bytes (names need not be UTF-8; `name` decodes them as node:fs does). */
    readonly nameBuffer: Buffer,
    readonly kind: NodeKind,
    readonly parentPath: string,
  ) {
    super();
    this.name = nameBuffer.toString('utf8');
  }
  get path(): string {
    return this.parentPath;
  }
  protected typeBits(): number {
    return KIND_MODE[this.kind];
  }
}
