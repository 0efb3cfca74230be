/**
 * Linux errno numbers the session answers with, and the typed error a FileSystem throws to
 * answer a request with one of them. The numbers are the generic Linux ones (x86-64, arm64);
 * they travel on the wire as `-errno` in fuse_out_header.error.
 */
import { constants } from 'node:os';

export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  EROFS: 30,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ENODATA: 61,
  EPROTO: 71,
  EOPNOTSUPP: 95,
  ECONNABORTED: 103,
  ENOTCONN: 107,
} as const;

export type ErrnoName = keyof typeof Errno;

/** Name of an errno number ("ENOENT"), or "errno N" when unknown. */
export function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(constants.errno)) {
    if (value === errno) return name;
  }
  return `errno ${errno}`;
}

/**
 * Thrown by a FileSystem method to answer the request with `errno` (e.g. ENOENT, ENOTDIR).
 * Any other exception is answered with EIO and logged: it means a bug or corrupt data.
 */
export class FuseErrno extends Error {
  readonly errno: number;
  constructor(errno: number, message?: string) {
    if (!Number.isInteger(errno) || errno <= 0 || errno >= 1000) {
      throw new RangeError(`FuseErrno: errno must be an integer in 1..999, got ${errno}`);
    }
    super(message ?? errnoName(errno));
    this.name = 'FuseErrno';
    this.errno = errno;
  }
}
