/**
 * Errors raised while setting up or tearing down a mount. Each message says what failed and,
 * where there is one, what the user can do about it.
 */

export class FuseError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** /dev/fuse cannot be opened (missing, no permission, not a FUSE device…). */
export class FuseDeviceError extends FuseError {
  constructor(
    readonly devicePath: string,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** The mountpoint is unusable: missing, not a directory, already mounted, dead mount. */
export class MountpointError extends FuseError {
  constructor(
    readonly mountpoint: string,
    readonly reason: 'missing' | 'not-directory' | 'already-mounted' | 'dead-mount' | 'inaccessible',
    message: string,
  ) {
    super(message);
  }
}

/** mount(8) or umount(8) failed; `stderr` holds what it printed. */
export class MountCommandError extends FuseError {
  constructor(
    readonly command: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    message: string,
  ) {
    super(message);
  }
}

/** The kernel sent something this session cannot parse (too short, wrong length…). */
export class FuseProtocolError extends FuseError {}

/** The FileSystem module could not be loaded or did not build a FileSystem. */
export class FileSystemLoadError extends FuseError {
  /**
   * The FileSystem's own message when createFileSystem() threw (a corrupt layer, say), without
   * this package's words around it: a caller that knows the module can report it as its own.
   * It crosses from a worker thread as text, so it is kept apart from `cause`.
   */
  readonly filesystemMessage: string | undefined;

  constructor(message: string, options?: { cause?: unknown; filesystemMessage?: string }) {
    super(message, options);
    this.filesystemMessage = options?.filesystemMessage;
  }
}
