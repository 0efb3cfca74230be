/**
 * Typed errors of the OCI layout reader. Every message is one line and names the file (or the
 * reference) and what is wrong with it, so a user can fix the layout without reading our code.
 * Where the Go atomfs (through umoci) has a well-known message, we keep its wording as a prefix
 * so scripts grepping for it keep working.
 */
const MAX_SHOWN = 200;

/** Quote a string that came from a file or the user, clipped, so a message stays one short line. */
export function quote(s: string): string {
  return s.length > MAX_SHOWN ? `${JSON.stringify(s.slice(0, MAX_SHOWN))}… (${s.length} chars)` : JSON.stringify(s);
}

/** A token (media type, digest) shown bare when it is plain printable ASCII, quoted otherwise. */
export function show(s: string): string {
  return /^[\x21-\x7e]{1,200}$/.test(s) ? s : quote(s);
}

export class OciError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The directory is not an OCI image layout: `oci-layout`, `blobs/` or `index.json` missing or wrong. */
export class LayoutError extends OciError {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`invalid OCI layout: ${path}: ${problem}`);
  }
}

/** A JSON document (oci-layout, index.json, an index or manifest blob) does not parse or has a wrong field. */
export class MalformedJsonError extends OciError {
  constructor(
    readonly path: string,
    readonly field: string | undefined,
    readonly problem: string,
  ) {
    super(field === undefined ? `malformed JSON in ${path}: ${problem}` : `malformed JSON in ${path}: ${field}: ${problem}`);
  }
}

/** The tag is not a valid OCI ref name (same wording as umoci). */
export class InvalidReferenceError extends OciError {
  constructor(readonly reference: string) {
    super(`refusing to resolve invalid reference ${quote(reference)}`);
  }
}

/** The `OCIDIR:TAG` argument cannot be split. */
export class ImageRefSyntaxError extends OciError {
  constructor(
    readonly arg: string,
    readonly problem: string,
  ) {
    super(`invalid image reference ${quote(arg)}: ${problem} (expected OCIDIR:TAG)`);
  }
}

/** The tag resolves to zero or to several manifests (Go: `bad descriptor <tag>`). */
export class BadDescriptorError extends OciError {
  constructor(
    readonly reference: string,
    readonly reason: 'not found' | 'ambiguous',
    detail: string,
  ) {
    super(`bad descriptor ${reference}: ${reason}: ${detail}`);
  }
}

/** A digest string is not `<algorithm>:<encoded>`, or its encoded part is wrong for the algorithm. */
export class InvalidDigestError extends OciError {
  constructor(
    readonly digest: string,
    readonly where: string,
    readonly problem: string,
  ) {
    super(`invalid digest ${quote(digest)} in ${where}: ${problem}`);
  }
}

/** A syntactically valid digest whose algorithm we cannot check (everything but sha256). */
export class UnsupportedDigestAlgorithmError extends OciError {
  constructor(
    readonly digest: string,
    readonly algorithm: string,
    readonly where: string,
  ) {
    super(`unsupported digest algorithm ${quote(algorithm)} of ${show(digest)} in ${where} (only sha256 is supported)`);
  }
}

/** A blob file is missing, not a regular file, or cannot be read. */
export class BlobError extends OciError {
  constructor(
    readonly path: string,
    readonly problem: string,
    noun: 'blob' | 'file' = 'blob',
  ) {
    super(`${noun} ${path}: ${problem}`);
  }
}

/** The content of a blob does not hash to the digest that names it. */
export class DigestMismatchError extends BlobError {
  constructor(
    path: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(path, `digest mismatch: expected ${expected}, content hashes to ${actual}`);
  }
}

/** The blob's size differs from the descriptor's `size`. */
export class SizeMismatchError extends BlobError {
  constructor(
    path: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(path, `size mismatch: descriptor says ${expected} bytes, file has ${actual} bytes`);
  }
}

/** A JSON file or blob is larger than we are willing to load into memory. */
export class BlobTooLargeError extends BlobError {
  constructor(
    path: string,
    readonly size: number,
    readonly limit: number,
    noun: 'blob' | 'file' = 'blob',
  ) {
    super(path, `${size} bytes exceeds the ${limit}-byte limit for JSON documents`, noun);
  }
}

/** The tag resolved to something that is not an OCI image manifest (same wording as umoci/atomfs). */
export class NotAManifestError extends OciError {
  constructor(readonly mediaType: string) {
    super(`descriptor does not point to a manifest: ${show(mediaType)}`);
  }
}

/** Nested image indexes too deep or too many of them: a hostile layout must not make us walk forever. */
export class IndexLimitError extends OciError {
  constructor(
    readonly reference: string,
    readonly problem: string,
  ) {
    super(`resolving ${quote(reference)}: ${problem}`);
  }
}

/** The manifest lists no layers (Go would fail later with an overlay EINVAL). */
export class EmptyImageError extends OciError {
  constructor(
    readonly reference: string,
    readonly manifestDigest: string,
  ) {
    super(`image ${quote(reference)} (manifest ${manifestDigest}) has no layers`);
  }
}

/** More layers than an overlay can stack: refused before any layer is opened. */
export class TooManyLayersError extends OciError {
  constructor(
    readonly reference: string,
    readonly manifestDigest: string,
    readonly layers: number,
    readonly limit: number,
  ) {
    super(`image ${quote(reference)} (manifest ${manifestDigest}) has ${layers} layers; at most ${limit} can be mounted (the kernel's overlayfs stacks at most 500 lower layers)`);
  }
}

/** A layer media type we cannot mount (erofs for now, tar, anything unknown). */
export class UnsupportedLayerError extends OciError {
  constructor(
    readonly digest: string,
    readonly mediaType: string,
    message: string,
  ) {
    super(message);
  }
}

/** The verity root-hash annotation of a layer is not 32 bytes of hex. */
export class InvalidRootHashError extends OciError {
  constructor(
    readonly digest: string,
    readonly annotation: string,
    readonly value: string,
    problem: string,
  ) {
    super(`layer ${digest}: annotation ${annotation}: ${problem}`);
  }
}
