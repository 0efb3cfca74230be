/** Image references: the `OCIDIR:TAG` command-line argument and the OCI ref-name grammar of tags. */
import { existsSync } from 'node:fs';
import { ImageRefSyntaxError, InvalidReferenceError } from './errors.js';

/**
 * OCI image-layout ref-name grammar, as enforced by umoci's ResolveReference. Linear to match: every
 * repetition starts with a mandatory separator, so there is no catastrophic backtracking.
 */
const REF_NAME = /^([A-Za-z0-9]+(([-._:@+]|--)[A-Za-z0-9]+)*)(\/([A-Za-z0-9]+(([-._:@+]|--)[A-Za-z0-9]+)*))*$/;

export function isValidRefName(tag: string): boolean {
  return REF_NAME.test(tag);
}

export function checkRefName(tag: string): void {
  if (!isValidRefName(tag)) throw new InvalidReferenceError(tag);
}

export interface ImageRef {
  /** The layout directory as written (not made absolute). */
  readonly dir: string;
  /** Everything after the first colon: tags may contain colons (`minbase:latest`). */
  readonly tag: string;
}

export interface ParseImageRefOptions {
  /** Existence test for the `oci:` prefix rule; defaults to fs.existsSync relative to the cwd. */
  readonly exists?: (path: string) => boolean;
}

const TRANSPORT_PREFIX = 'oci:';

/**
 * Split `OCIDIR:TAG` at the FIRST colon, like Go atomfs (`strings.SplitN(arg, ":", 2)`), so a
 * directory cannot contain a colon but a tag can.
 *
 * Extension (never changes a reference Go accepts): skopeo-style `oci:DIR:TAG` is understood as
 * DIR:TAG only when the remainder still contains a colon AND no directory named `oci` exists. Go
 * would take `oci` as the directory and fail with "oci directory oci does not exist" in exactly
 * that case; when `./oci` exists we keep Go's reading (dir `oci`, tag `DIR:TAG`).
 */
export function parseImageRef(arg: string, options: ParseImageRefOptions = {}): ImageRef {
  const colon = arg.indexOf(':');
  if (colon < 0) throw new ImageRefSyntaxError(arg, 'no ":" between the layout directory and the tag');
  if (arg.startsWith(TRANSPORT_PREFIX)) {
    const rest = arg.slice(TRANSPORT_PREFIX.length);
    const exists = options.exists ?? existsSync;
    if (rest.indexOf(':') > 0 && !exists('oci')) return parseImageRef(rest, { exists: () => true });
  }
  const dir = arg.slice(0, colon);
  const tag = arg.slice(colon + 1);
  if (dir === '') throw new ImageRefSyntaxError(arg, 'empty layout directory');
  if (tag === '') throw new ImageRefSyntaxError(arg, 'empty tag');
  return { dir, tag };
}
