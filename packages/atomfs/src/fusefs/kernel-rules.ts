/**
 * What the kernel's own squashfs (and overlayfs over it) answers where squashfs itself leaves a
 * choice, so that our FUSE mounts answer the same. Each rule was checked against a loop mount.
 */
import { Errno, FuseErrno } from '@atomfs/fuse';

/**
 * A symlink target of more than a page: the kernel's squashfs refuses the inode (lookup and
 * lstat fail with EINVAL). One of exactly a page reads back as its first PAGE_SIZE - 1 bytes,
 * as does any target through FUSE, whose READLINK reply holds at most that.
 */
const PAGE_SIZE = 4096;

export function symlinkRefused(mode: number, size: number): boolean {
  return (mode & 0o170000) === 0o120000 && size > PAGE_SIZE;
}

/** lookup of an entry the kernel would refuse: EINVAL, as the kernel answers. */
export function refuseLongSymlink(mode: number, size: number): void {
  if (symlinkRefused(mode, size)) throw new FuseErrno(Errno.EINVAL);
}

/** The link as readlink(2) on the kernel's mount returns it. */
export function kernelReadlink(target: Buffer): Buffer {
  if (target.length > PAGE_SIZE) throw new FuseErrno(Errno.EINVAL);
  return target.length < PAGE_SIZE ? target : target.subarray(0, PAGE_SIZE - 1);
}

const STORED_PREFIXES = ['user.', 'trusted.', 'security.'].map((p) => Buffer.from(p));

/**
 * squashfs stores only user., trusted. and security. xattrs and the kernel has no handler for
 * any other name (system.posix_acl_access included: squashfs has no ACLs): EOPNOTSUPP, where
 * an absent name of those three namespaces is ENODATA.
 */
export function checkSquashfsXattrName(name: Buffer): void {
  if (!STORED_PREFIXES.some((p) => name.length > p.length && name.subarray(0, p.length).equals(p))) {
    throw new FuseErrno(Errno.EOPNOTSUPP);
  }
}
