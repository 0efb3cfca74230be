/**
 * Typed errors of the overlay. Each carries the Linux errno name and number so a FUSE server can
 * answer with it directly and a library user can branch on `code` like with node:fs errors.
 */
export const ERRNO = {
  ENOENT: 2,
  ENXIO: 6,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENODATA: 61,
  EOPNOTSUPP: 95,
  ESTALE: 116,
} as const;

export type OverlayErrorCode = keyof typeof ERRNO;

const TEXT: Record<OverlayErrorCode, string> = {
  ENOENT: 'no such file or directory',
  ENXIO: 'no such device or address',
  ENOTDIR: 'not a directory',
  EISDIR: 'illegal operation on a directory',
  EINVAL: 'invalid argument',
  ENODATA: 'no data available',
  EOPNOTSUPP: 'operation not supported',
  ESTALE: 'stale node id',
};

export class OverlayError extends Error {
  /** Linux errno number for `code`. */
  readonly errno: number;
  constructor(
    readonly code: OverlayErrorCode,
    readonly syscall: string,
    /** What was asked for: a node id, a name or a path, already made printable. */
    readonly subject: string,
  ) {
    super(`${code}: ${TEXT[code]}, ${syscall} ${subject}`);
    this.name = 'OverlayError';
    this.errno = ERRNO[code];
  }
}

/** The layers given to the overlay cannot be used (no layers, a root that is not a directory, a bad key). */
export class LayerSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LayerSetupError';
  }
}

/** Printable form of a name that may not be UTF-8, clipped so an error message stays short. */
export function printableName(name: Buffer): string {
  const clipped = name.length > 64 ? name.subarray(0, 64) : name;
  return JSON.stringify(clipped.toString('latin1')) + (name.length > 64 ? '…' : '');
}
