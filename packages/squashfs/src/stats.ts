import type { InodeAttr } from './squashfs.js';

const S_IFMT = 0o170000;

/** node:fs.Stats-shaped attributes of an image entry (squashfs keeps only mtime; atime/ctime mirror it). */
export class Stats {
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

  constructor(a: InodeAttr) {
    this.ino = a.ino;
    this.mode = a.mode;
    this.nlink = a.nlink;
    this.uid = a.uid;
    this.gid = a.gid;
    this.rdev = a.rdev;
    this.size = a.size;
    this.blksize = a.blksize;
    this.blocks = a.blocks;
    this.atimeMs = this.mtimeMs = this.ctimeMs = this.birthtimeMs = a.mtime * 1000;
    this.atime = new Date(this.atimeMs);
    this.mtime = new Date(this.mtimeMs);
    this.ctime = new Date(this.ctimeMs);
    this.birthtime = new Date(this.birthtimeMs);
  }

  isFile(): boolean {
    return (this.mode & S_IFMT) === 0o100000;
  }
  isDirectory(): boolean {
    return (this.mode & S_IFMT) === 0o040000;
  }
  isSymbolicLink(): boolean {
    return (this.mode & S_IFMT) === 0o120000;
  }
  isBlockDevice(): boolean {
    return (this.mode & S_IFMT) === 0o060000;
  }
  isCharacterDevice(): boolean {
    return (this.mode & S_IFMT) === 0o020000;
  }
  isFIFO(): boolean {
    return (this.mode & S_IFMT) === 0o010000;
  }
  isSocket(): boolean {
    return (this.mode & S_IFMT) === 0o140000;
  }
}

/** Directory entry types by basic inode type 1..7. */
const ENTRY_MODES = [0, 0o040000, 0o100000, 0o120000, 0o060000, 0o020000, 0o010000, 0o140000];

/** node:fs.Dirent-shaped directory entry. */
export class Dirent {
  readonly name: string;
  constructor(
    /** The raw name bytes (names need not be UTF-8; `name` decodes them like node:fs does). */
    readonly nameBuffer: Buffer,
    private readonly basicType: number,
    readonly parentPath: string,
  ) {
    this.name = nameBuffer.toString('utf8');
  }
  get path(): string {
    return this.parentPath;
  }
  private is(mode: number): boolean {
    return ENTRY_MODES[this.basicType] === mode;
  }
  isFile(): boolean {
    return this.is(0o100000);
  }
  isDirectory(): boolean {
    return this.is(0o040000);
  }
  isSymbolicLink(): boolean {
    return this.is(0o120000);
  }
  isBlockDevice(): boolean {
    return this.is(0o060000);
  }
  isCharacterDevice(): boolean {
    return this.is(0o020000);
  }
  isFIFO(): boolean {
    return this.is(0o010000);
  }
  isSocket(): boolean {
    return this.is(0o140000);
  }
}
