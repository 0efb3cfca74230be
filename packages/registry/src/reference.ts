/** `docker://HOST[:PORT]/REPO(:TAG|@sha256:HEX)` references, as skopeo writes them. */
import { RemoteRefError } from './errors.js';

export const DOCKER_TRANSPORT = 'docker://';

export interface RemoteRef {
  /** `host[:port]`, as given (lower-cased host). */
  readonly registry: string;
  /** Repository path, e.g. `library/busybox`. */
  readonly repository: string;
  /** Tag, when the reference names one. */
  readonly tag?: string;
  /** `sha256:<hex>`, when the reference pins the manifest. */
  readonly digest?: string;
  /** What the manifest endpoint takes: the digest if given, else the tag. */
  readonly reference: string;
}

// The distribution spec's grammar of repository names and tags.
const REPO_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$/;

export function isRemoteRef(arg: string): boolean {
  return arg.startsWith(DOCKER_TRANSPORT);
}

/**
 * Parse a docker:// reference. A tag and a digest together (`REPO:TAG@sha256:…`) pin the digest:
 * the tag is kept for messages only. Docker Hub short names (`docker://busybox`) are not
 * expanded: the host must be given.
 */
export function parseRemoteRef(arg: string): RemoteRef {
  if (!isRemoteRef(arg)) throw new RemoteRefError(arg, `does not start with ${DOCKER_TRANSPORT}`);
  const rest = arg.slice(DOCKER_TRANSPORT.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) throw new RemoteRefError(arg, 'no registry host');
  const registry = rest.slice(0, slash);
  if (!HOST.test(registry)) throw new RemoteRefError(arg, `bad registry host ${JSON.stringify(registry)}`);
  let path = rest.slice(slash + 1);
  let digest: string | undefined;
  const at = path.indexOf('@');
  if (at >= 0) {
    digest = path.slice(at + 1);
    path = path.slice(0, at);
    if (!DIGEST.test(digest)) throw new RemoteRefError(arg, `bad digest ${JSON.stringify(digest)} (only sha256:<64 hex> is supported)`);
  }
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon > path.lastIndexOf('/')) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag)) throw new RemoteRefError(arg, `bad tag ${JSON.stringify(tag)}`);
  }
  if (path === '') throw new RemoteRefError(arg, 'no repository');
  if (!path.split('/').every((c) => REPO_COMPONENT.test(c))) throw new RemoteRefError(arg, `bad repository name ${JSON.stringify(path)}`);
  if (tag === undefined && digest === undefined) throw new RemoteRefError(arg, 'no tag or digest');
  return {
    registry: registry.toLowerCase(),
    repository: path,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
    reference: digest ?? (tag as string),
  };
}

/** The reference written back, canonical. */
export function formatRemoteRef(r: RemoteRef): string {
  return `${DOCKER_TRANSPORT}${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}
