/**
 * Typed errors of the registry client and the blob cache. Messages are one line and name the
 * registry, repository or blob concerned; a wrapped failure keeps its cause.
 */
export class RegistryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A `docker://` reference that cannot be parsed. */
export class RemoteRefError extends RegistryError {
  constructor(
    readonly arg: string,
    readonly problem: string,
  ) {
    super(`invalid registry reference ${JSON.stringify(arg)}: ${problem} (expected docker://HOST[:PORT]/REPO:TAG or docker://HOST[:PORT]/REPO@sha256:HEX)`);
  }
}

/** The registry answered with a status we cannot use (after retries, for retryable ones). */
export class RegistryHttpError extends RegistryError {
  constructor(
    readonly url: string,
    readonly status: number,
    detail: string,
  ) {
    super(`${url}: HTTP ${status}${detail !== '' ? `: ${detail}` : ''}`);
  }
}

/** The registry could not be reached, or a transfer failed, on every attempt. */
export class RegistryUnavailableError extends RegistryError {
  constructor(
    readonly url: string,
    readonly attempts: number,
    cause: unknown,
  ) {
    super(`${url}: ${cause instanceof Error ? cause.message : String(cause)} (after ${attempts} attempt${attempts === 1 ? '' : 's'})`, { cause });
  }
}

/** Content from the registry does not match the digest that names it, or is not the size its descriptor says. */
export class RemoteDigestError extends RegistryError {}

/** The blob cache directory is unsafe (owned by someone else, writable by others) or unusable. */
export class BlobCacheError extends RegistryError {}

/** A read of a remote blob that could not be served in time (a dead or hanging registry). */
export class RemoteReadError extends RegistryError {}
