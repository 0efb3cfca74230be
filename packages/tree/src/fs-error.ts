/** Codes the path API gives, with node:fs's wording. */
const TEXT = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EISDIR: 'illegal operation on a directory',
  EINVAL: 'invalid argument',
  ELOOP: 'too many symbolic links encountered',
  ENODATA: 'no data available',
  ERANGE: 'result too large',
} as const;

export type FsErrorCode = keyof typeof TEXT;

/**
 * A path-level error with an errno code, shaped like node:fs's. It has no numeric `errno`: that
 * is how extraction tells an error of the image's tree from one of the destination's filesystem.
 */
export class FsError extends Error {
  constructor(
    readonly code: FsErrorCode,
    readonly syscall: string,
    readonly path: string,
  ) {
    super(`${code}: ${TEXT[code]}, ${syscall} '${path}'`);
    this.name = 'FsError';
  }
}
