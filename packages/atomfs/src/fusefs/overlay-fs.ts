import { Errno, FuseErrno, ROOT_ID, type Attr, type DirEntry, type Entry, type FileSystem, type OpenResult, type Statfs } from '@atomfs/fuse';
import { Overlay, OverlayError, type OverlayAttr } from '@atomfs/overlay';
import { openLayers } from '../layers/image-overlay.js';
import type { LayerImage } from '../layers/layer-format.js';
import type { LayerSpec } from '../layers/open-layer.js';
import { toFuseAttr } from './attr.js';
import { kernelReadlink, refuseLongSymlink, symlinkRefused } from './kernel-rules.js';

/** Options of an image mount; structured-cloneable so each worker thread opens the layers itself. */
export interface OverlayFsOptions {
  /** Top layer first. */
  layers: LayerSpec[];
}

/** S_IFDIR: the file type bits of a directory in st_mode (also d_type's source here). */
const S_IFDIR = 0o040000;

/**
 * The merged view of an image's layers served over FUSE. Overlay ids are used as FUSE node ids
 * (the overlay never hands out 0 or 1, so its root becomes FUSE's 1). A file's id is also its
 * file handle: any read worker can read a file from the id alone.
 */
export class OverlayFs implements FileSystem {
  readonly immutable = true;
  private readonly overlay: Overlay;
  private readonly rootId: bigint;
  private readonly blksize: number;

  /** `reuseBuffers`: read results may be overwritten by the next read (a server that replies first). */
  constructor(private readonly images: LayerImage[]) {
    this.overlay = new Overlay(images.map((i) => i.layer));
    this.rootId = this.overlay.rootId;
    this.blksize = images[0]?.blockSize ?? 4096;
  }

  private toOverlay(node: bigint): bigint {
    return node === ROOT_ID ? this.rootId : node;
  }
  private toFuse(id: bigint): bigint {
    return id === this.rootId ? ROOT_ID : id;
  }

  private attr(a: OverlayAttr): Attr {
    return toFuseAttr(a, a.ino);
  }

  /** Overlay errors carry their errno; everything else (corrupt image, verity mismatch) is EIO. */
  private call<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof OverlayError) throw new FuseErrno(err.errno);
      throw err;
    }
  }

  lookup(parent: bigint, name: Buffer): Entry | undefined {
    return this.call(() => {
      const e = this.overlay.lookup(this.toOverlay(parent), name);
      if (e === undefined) return undefined;
      refuseLongSymlink(e.attr.mode, e.attr.size);
      return { nodeid: this.toFuse(e.id), attr: this.attr(e.attr) };
    });
  }

  forget(node: bigint): void {
    if (node !== ROOT_ID) this.overlay.forget(node);
  }

  getattr(node: bigint): Attr {
    return this.call(() => this.attr(this.overlay.getattr(this.toOverlay(node))));
  }

  readlink(node: bigint): Buffer {
    return this.call(() => kernelReadlink(this.overlay.readlink(this.toOverlay(node))));
  }

  open(node: bigint): OpenResult {
    return this.call(() => {
      const a = this.overlay.getattr(this.toOverlay(node));
      if ((a.mode & 0o170000) === S_IFDIR) throw new FuseErrno(Errno.EISDIR);
      return { fh: this.toOverlay(node), keepCache: true };
    });
  }

  read(_node: bigint, fh: bigint, offset: number, size: number): Buffer {
    return this.call(() => this.overlay.read(fh, offset, size));
  }

  lseek(_node: bigint, fh: bigint, offset: number, whence: 'data' | 'hole'): number {
    return this.call(() => this.overlay.seek(fh, offset, whence));
  }

  *readdir(node: bigint, _fh: bigint, offset: bigint, plus: boolean): Iterable<DirEntry> {
    const id = this.toOverlay(node);
    const { entries, self, merged, parent } = this.call(() => ({
      entries: this.overlay.readdir(id),
      self: this.overlay.getattr(id),
      merged: this.overlay.isMerged(id),
      parent: this.overlay.parentOf(id),
    }));
    const start = Number(offset);
    if (start < 1) yield { name: Buffer.from('.'), cookie: 1n, ino: self.ino, mode: self.mode };
    // ".." carries the parent's inode number, as overlayfs shows it (our inode numbers are node
    // ids). The root's parent is outside the mount: its own number (overlayfs shows one no
    // inode has), never 0, which glibc's readdir would hide.
    if (start < 2) yield { name: Buffer.from('..'), cookie: 2n, ino: parent ?? self.ino, mode: S_IFDIR };
    for (let i = Math.max(0, start - 2); i < entries.length; i++) {
      const e = entries[i]!;
      const a = e.attr;
      // overlayfs (xino=on) drops an entry of a merged directory whose lookup fails.
      if (merged && symlinkRefused(a.mode, a.size)) continue;
      // Two literal shapes, not a spread of a conditional object: one allocation per entry (a
      // cold walk of 20,000 entries spends more in the garbage collector than in any function).
      // A symlink the kernel refuses is listed without attributes: its LOOKUP is refused.
      yield plus && !symlinkRefused(a.mode, a.size)
        ? { name: e.name, cookie: BigInt(i + 3), ino: a.ino, mode: a.mode, entry: { nodeid: this.toFuse(e.id), attr: this.attr(a) } }
        : { name: e.name, cookie: BigInt(i + 3), ino: a.ino, mode: a.mode };
    }
  }

  statfs(): Statfs {
    let blocks = 0;
    let files = 0;
    for (const i of this.images) {
      const s = i.statfs();
      blocks += Math.ceil((s.blocks * s.blockSize) / this.blksize);
      files += s.files;
    }
    return { blocks, bfree: 0, bavail: 0, files, ffree: 0, bsize: this.blksize, namelen: 255, frsize: this.blksize };
  }

  getxattr(node: bigint, name: Buffer): Buffer | undefined {
    return this.call(() => this.overlay.getxattr(this.toOverlay(node), name));
  }

  listxattr(node: bigint): Buffer[] {
    return this.call(() => this.overlay.listxattr(this.toOverlay(node)));
  }

  close(): void {
    for (const i of this.images) i.close();
  }
}

/** Open every layer (verified where it has a root hash) and build the merged filesystem. */
export function openOverlayFs(layers: LayerSpec[], options: { reuseBuffers?: boolean } = {}): OverlayFs {
  return new OverlayFs(openLayers(layers, options.reuseBuffers === true));
}

/** Entry point for FUSE worker threads (see @atomfs/fuse FileSystemModule). */
export function createFileSystem(options: unknown): FileSystem {
  // Every READ reply is written before the next read: buffers may be reused.
  return openOverlayFs((options as OverlayFsOptions).layers, { reuseBuffers: true });
}
