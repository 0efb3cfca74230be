/**
 * The kernel's own implementations as references: squashfs over a loop device, overlayfs, and
 * unsquashfs. Every helper tears down what it set up (unmount, loop detach, temp dir removal) even
 * when the callback throws, and registers the teardown so a crashed test process still cleans up.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { makeTempDir, scoped, trackLoop, trackMount, unmountSync } from './cleanup.js';
import { run, runSync } from './exec.js';

export class KernelMountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Detach a loop device; retried because the kernel may still hold it right after umount. */
function detachLoopSync(device: string): void {
  for (let i = 0; i < 20; i++) {
    const r = runSync(['losetup', '-d', device], { allowFail: true });
    if (r.status === 0) return;
    const err = r.stderr.toString('utf8');
    // Already gone (autoclear after umount, or detached by someone else): nothing to do.
    if (/No such device|No such device or address|not a block device/i.test(err)) return;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  }
  throw new KernelMountError(`losetup -d ${device} kept failing`);
}

export interface LoopMountOptions {
  /** Byte offset of the squashfs image inside the file (e.g. an image with a header). */
  offset?: number;
  /** Filesystem type for `mount -t` (default squashfs). */
  fsType?: 'squashfs' | 'erofs';
}

/**
 * Mount `image` read-only with the kernel's squashfs over a fresh loop device, run `fn` with the
 * mount point, then unmount, detach the loop device and remove the mount point — always.
 */
export async function withLoopMount<T>(image: string, fn: (mountpoint: string) => Promise<T> | T, opts: LoopMountOptions = {}): Promise<T> {
  return scoped(async (stack) => {
    const mnt = makeTempDir('mnt', stack);
    const args = ['losetup', '--find', '--show', '--read-only'];
    if (opts.offset !== undefined) {
      if (!Number.isSafeInteger(opts.offset) || opts.offset < 0) throw new RangeError(`bad offset ${opts.offset}`);
      args.push('--offset', String(opts.offset));
    }
    const dev = (await run([...args, resolve(image)])).stdout.toString('utf8').trim();
    if (!/^\/dev\/loop\d+$/.test(dev)) throw new KernelMountError(`losetup printed ${JSON.stringify(dev)}`);
    trackLoop(dev, image);
    stack.add(`detach ${dev}`, () => detachLoopSync(dev));
    trackMount(mnt);
    stack.add(`unmount ${mnt}`, () => unmountSync(mnt));
    await run(['mount', '-t', opts.fsType ?? 'squashfs', '-o', 'ro', dev, mnt]);
    return await fn(mnt);
  });
}

export interface OverlayOptions {
  /** Writable upper dir (then `work` is needed on the same filesystem; created if omitted). */
  upper?: string;
  work?: string;
  /** Use user.overlay.* instead of trusted.overlay.* (what an unprivileged mount must use). */
  userxattr?: boolean;
  /** More mount options, appended as given. */
  extraOptions?: readonly string[];
}

function checkOverlayPath(p: string): string {
  const abs = resolve(p);
  // overlayfs option syntax uses ',' and ':' as separators (escapable, but our temp paths never need it).
  if (/[,:\\]/.test(abs)) throw new KernelMountError(`overlay path needs escaping, not supported here: ${abs}`);
  if (!existsSync(abs)) throw new KernelMountError(`overlay layer dir missing: ${abs}`);
  return abs;
}

/**
 * Mount a kernel overlayfs with `lowerTopFirst` as lower layers — TOP-MOST FIRST, as the kernel's
 * `lowerdir=top:...:bottom` wants (reverse an OCI manifest's bottom-first layer list). Options:
 * `index=off,xino=on` (+ `userxattr`). Without an upper dir the kernel needs two lower layers, so a
 * single lower layer gets an empty dir added below it (does not change the merged view).
 */
export async function withOverlayMount<T>(
  lowerTopFirst: readonly string[],
  fn: (mountpoint: string) => Promise<T> | T,
  opts: OverlayOptions = {},
): Promise<T> {
  if (lowerTopFirst.length === 0) throw new KernelMountError('overlay needs at least one lower dir');
  return scoped(async (stack) => {
    const lowers = lowerTopFirst.map(checkOverlayPath);
    if (lowers.length === 1 && opts.upper === undefined) lowers.push(makeTempDir('ovl-empty', stack));
    const o = [`lowerdir=${lowers.join(':')}`];
    if (opts.upper !== undefined) {
      const upper = checkOverlayPath(opts.upper);
      let work = opts.work;
      if (work === undefined) {
        // workdir must be on the upper dir's filesystem: make it a sibling.
        work = resolve(dirname(upper), `.ovl-work-${process.pid}-${Date.now()}`);
        mkdirSync(work);
        const w = work;
        stack.add(`remove ${w}`, () => runSync(['rm', '-rf', '--one-file-system', w]));
      }
      o.push(`upperdir=${upper}`, `workdir=${checkOverlayPath(work)}`);
    }
    o.push('index=off', 'xino=on');
    if (opts.userxattr) o.push('userxattr');
    o.push(...(opts.extraOptions ?? []));
    const mnt = makeTempDir('ovl', stack);
    trackMount(mnt);
    stack.add(`unmount ${mnt}`, () => unmountSync(mnt));
    await run(['mount', '-t', 'overlay', 'overlay', '-o', o.join(','), mnt]);
    return await fn(mnt);
  });
}

export interface UnsquashfsOptions {
  offset?: number;
}

/**
 * Extract `image` into `dir` with unsquashfs (as root: owners, modes, devices, xattrs restored;
 * the root of the image becomes `dir` itself, attributes included). `dir` must not exist or be
 * empty. Returns unsquashfs's stdout (its "created N files" summary).
 */
export async function unsquashfsTo(image: string, dir: string, opts: UnsquashfsOptions = {}): Promise<string> {
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new KernelMountError(`unsquashfs target ${dir} is not empty`);
  const args = ['unsquashfs', '-d', dir, '-no-progress'];
  if (opts.offset !== undefined) args.push('-o', String(opts.offset));
  const r = await run([...args, resolve(image)], { timeoutMs: 900_000 });
  return r.stdout.toString('utf8');
}
