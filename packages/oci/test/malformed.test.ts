/**
 * Every kind of malformed layout gives a typed error with the expected words. Each case starts from
 * a fresh good two-layer image and breaks exactly one thing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  BadDescriptorError,
  BlobError,
  BlobTooLargeError,
  DigestMismatchError,
  EmptyImageError,
  IndexLimitError,
  InvalidDigestError,
  InvalidReferenceError,
  InvalidRootHashError,
  LayoutError,
  MalformedJsonError,
  NotAManifestError,
  OciError,
  SizeMismatchError,
  UnsupportedDigestAlgorithmError,
  UnsupportedLayerError,
  resolveImage,
  writeLayout,
  type ResolveOptions,
} from '../src/index.js';
import { TAG, editIndex, editManifest, goodImage, putJsonBlob, randomFile, writeJson, type GoodImage } from './helpers.js';

const INDEX_MT = 'application/vnd.oci.image.index.v1+json';
const MANIFEST_MT = 'application/vnd.oci.image.manifest.v1+json';
const REF = 'org.opencontainers.image.ref.name';

interface Case {
  readonly name: string;
  readonly setup: (img: GoodImage) => void | Promise<void>;
  readonly tag?: string;
  readonly options?: ResolveOptions;
  readonly error: abstract new (...args: never[]) => OciError;
  readonly message: RegExp;
}

function flipByte(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    b[0] = (b[0] as number) ^ 0x20;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

function entry(idx: { manifests: { annotations?: Record<string, string> }[] }): any {
  return idx.manifests.find((d) => d.annotations?.[REF] === TAG);
}

/** Wrap the TAG entry in `levels` nested index blobs written by hand. */
function nestBy(img: GoodImage, levels: number): void {
  editIndex(img.dir, (idx) => {
    const e = entry(idx);
    let desc = { mediaType: e.mediaType, digest: e.digest, size: e.size };
    for (let i = 0; i < levels; i++) desc = putJsonBlob(img.dir, { schemaVersion: 2, manifests: [desc] }, INDEX_MT) as typeof desc;
    Object.assign(e, desc);
  });
}

const cases: Case[] = [
  // --- oci-layout / directory structure
  { name: 'layout dir missing', setup: (i) => rmSync(i.dir, { recursive: true }), error: LayoutError, message: /oci: directory does not exist/ },
  { name: 'oci-layout missing', setup: (i) => rmSync(join(i.dir, 'oci-layout')), error: LayoutError, message: /oci-layout: missing file/ },
  {
    name: 'oci-layout wrong version',
    setup: (i) => writeJson(join(i.dir, 'oci-layout'), { imageLayoutVersion: '2.0.0' }),
    error: LayoutError,
    message: /oci-layout: unsupported imageLayoutVersion "2\.0\.0" \(expected "1\.0\.0"\)/,
  },
  {
    name: 'oci-layout version of wrong type',
    setup: (i) => writeJson(join(i.dir, 'oci-layout'), { imageLayoutVersion: 1 }),
    error: LayoutError,
    message: /oci-layout: imageLayoutVersion must be a string, got number/,
  },
  { name: 'oci-layout without version', setup: (i) => writeJson(join(i.dir, 'oci-layout'), {}), error: LayoutError, message: /oci-layout: missing field imageLayoutVersion/ },
  { name: 'oci-layout not an object', setup: (i) => writeJson(join(i.dir, 'oci-layout'), ['1.0.0']), error: LayoutError, message: /oci-layout: expected a JSON object, got array/ },
  { name: 'oci-layout bad JSON', setup: (i) => writeFileSync(join(i.dir, 'oci-layout'), '{"imageLayoutVersion": '), error: LayoutError, message: /oci-layout: not valid JSON/ },
  {
    name: 'oci-layout is a FIFO (must not hang)',
    setup: (i) => {
      rmSync(join(i.dir, 'oci-layout'));
      execFileSync('mkfifo', [join(i.dir, 'oci-layout')]);
    },
    error: LayoutError,
    message: /oci-layout: is not a regular file/,
  },
  { name: 'oci-layout is a directory', setup: (i) => (rmSync(join(i.dir, 'oci-layout')), mkdirSync(join(i.dir, 'oci-layout'))), error: LayoutError, message: /oci-layout: is a directory/ },
  { name: 'blobs missing', setup: (i) => rmSync(join(i.dir, 'blobs'), { recursive: true }), error: LayoutError, message: /blobs: missing directory/ },
  { name: 'blobs is a file', setup: (i) => (rmSync(join(i.dir, 'blobs'), { recursive: true }), writeFileSync(join(i.dir, 'blobs'), '')), error: LayoutError, message: /blobs: is not a directory/ },
  { name: 'index.json missing', setup: (i) => rmSync(join(i.dir, 'index.json')), error: LayoutError, message: /index\.json: missing file/ },
  {
    name: 'index.json is a directory',
    setup: (i) => (rmSync(join(i.dir, 'index.json')), mkdirSync(join(i.dir, 'index.json'))),
    error: LayoutError,
    message: /index\.json: is a directory, expected a file/,
  },
  // --- index.json content
  { name: 'index.json bad JSON', setup: (i) => writeFileSync(join(i.dir, 'index.json'), '{"manifests": [}'), error: MalformedJsonError, message: /index\.json: not valid JSON/ },
  { name: 'index.json without manifests', setup: (i) => writeJson(join(i.dir, 'index.json'), { schemaVersion: 2 }), error: MalformedJsonError, message: /index\.json: manifests: missing required field/ },
  { name: 'index.json manifests not an array', setup: (i) => editIndex(i.dir, (x) => (x.manifests = {})), error: MalformedJsonError, message: /index\.json: manifests: expected an array, got object/ },
  { name: 'index.json schemaVersion a string', setup: (i) => editIndex(i.dir, (x) => (x.schemaVersion = '2')), error: MalformedJsonError, message: /index\.json: schemaVersion: expected a non-negative integer, got string/ },
  { name: 'descriptor digest a number', setup: (i) => editIndex(i.dir, (x) => (entry(x).digest = 5)), error: MalformedJsonError, message: /index\.json: manifests\[0\]\.digest: expected a string, got number/ },
  { name: 'descriptor size negative', setup: (i) => editIndex(i.dir, (x) => (entry(x).size = -1)), error: MalformedJsonError, message: /manifests\[0\]\.size: expected a non-negative integer, got -1/ },
  { name: 'descriptor size fractional', setup: (i) => editIndex(i.dir, (x) => (entry(x).size = 1.5)), error: MalformedJsonError, message: /manifests\[0\]\.size: expected a non-negative integer, got 1\.5/ },
  { name: 'descriptor without mediaType', setup: (i) => editIndex(i.dir, (x) => delete entry(x).mediaType), error: MalformedJsonError, message: /manifests\[0\]\.mediaType: missing required field/ },
  {
    name: 'annotation value not a string',
    setup: (i) => editIndex(i.dir, (x) => x.manifests.push({ mediaType: MANIFEST_MT, digest: 'sha256:' + '0'.repeat(64), size: 1, annotations: { [REF]: 7 } })),
    error: MalformedJsonError,
    message: /manifests\[1\]\.annotations\["org\.opencontainers\.image\.ref\.name"\]: expected a string, got number/,
  },
  // --- tag resolution
  { name: 'invalid tag', tag: 'bad tag!', setup: () => {}, error: InvalidReferenceError, message: /^refusing to resolve invalid reference "bad tag!"$/ },
  { name: 'tag with leading separator', tag: '-x', setup: () => {}, error: InvalidReferenceError, message: /refusing to resolve invalid reference "-x"/ },
  { name: 'tag not found', tag: 'nope', setup: () => {}, error: BadDescriptorError, message: /^bad descriptor nope: not found: .*\(tags: "test-squashfs"\)/ },
  {
    name: '"constructor" is not a tag',
    tag: 'constructor',
    setup: (i) => editIndex(i.dir, (x) => delete entry(x).annotations),
    error: BadDescriptorError,
    message: /bad descriptor constructor: not found: .*\(it has no tags\)/,
  },
  {
    name: 'duplicate tag',
    setup: (i) => editIndex(i.dir, (x) => x.manifests.push({ ...entry(x) })),
    error: BadDescriptorError,
    message: /^bad descriptor test-squashfs: ambiguous: more than one manifest matches: 2 entries .* carry this tag/,
  },
  {
    name: 'nested index with two manifests (multi-platform)',
    setup: (i) =>
      editIndex(i.dir, (x) => {
        const e = entry(x);
        const m = { mediaType: e.mediaType, digest: e.digest, size: e.size };
        Object.assign(e, putJsonBlob(i.dir, { schemaVersion: 2, manifests: [m, m] }, INDEX_MT));
      }),
    error: BadDescriptorError,
    message: /bad descriptor test-squashfs: ambiguous: .*platform selection is not supported/,
  },
  {
    name: 'nested index with no manifests',
    setup: (i) => editIndex(i.dir, (x) => Object.assign(entry(x), putJsonBlob(i.dir, { schemaVersion: 2, manifests: [] }, INDEX_MT))),
    error: BadDescriptorError,
    message: /bad descriptor test-squashfs: not found: .*lead to no manifest/,
  },
  // --- manifest blob
  { name: 'manifest digest mismatch (flipped byte)', setup: (i) => flipByte(i.written.manifestPath, 30), error: DigestMismatchError, message: /blob .*: digest mismatch: expected sha256:[0-9a-f]{64}, content hashes to sha256:[0-9a-f]{64}/ },
  { name: 'manifest size mismatch', setup: (i) => editIndex(i.dir, (x) => (entry(x).size += 1)), error: SizeMismatchError, message: /size mismatch: descriptor says \d+ bytes, file has \d+ bytes/ },
  { name: 'manifest blob missing', setup: (i) => rmSync(i.written.manifestPath), error: BlobError, message: /blob .*\/blobs\/sha256\/[0-9a-f]{64}: does not exist/ },
  {
    name: 'wrong manifest media type',
    setup: (i) => editIndex(i.dir, (x) => (entry(x).mediaType = 'application/vnd.docker.distribution.manifest.list.v2+json')),
    error: NotAManifestError,
    message: /^descriptor does not point to a manifest: application\/vnd\.docker\.distribution\.manifest\.list\.v2\+json$/,
  },
  { name: 'manifest body mediaType disagrees', setup: (i) => editManifest(i, (m) => (m.mediaType = INDEX_MT)), error: MalformedJsonError, message: /mediaType: expected application\/vnd\.oci\.image\.manifest\.v1\+json/ },
  { name: 'manifest layers not an array', setup: (i) => editManifest(i, (m) => (m.layers = 'x')), error: MalformedJsonError, message: /sha256\/[0-9a-f]{64}: layers: expected an array, got string/ },
  { name: 'manifest blob not JSON', setup: (i) => editIndex(i.dir, (x) => Object.assign(entry(x), putJsonBlob(i.dir, 'x', MANIFEST_MT), { size: 3 })), error: MalformedJsonError, message: /expected an object, got string/ },
  { name: 'empty layers', setup: (i) => editManifest(i, (m) => (m.layers = [])), error: EmptyImageError, message: /image "test-squashfs" \(manifest sha256:[0-9a-f]{64}\) has no layers/ },
  // --- digests
  { name: 'manifest digest with ../', setup: (i) => editIndex(i.dir, (x) => (entry(x).digest = 'sha256:../../../../etc/passwd')), error: InvalidDigestError, message: /invalid digest "sha256:\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd" in .*index\.json manifests\[0\]: not of the form/ },
  { name: 'layer digest with ../', setup: (i) => editManifest(i, (m) => (m.layers[0].digest = 'sha256:../' + 'a'.repeat(61))), error: InvalidDigestError, message: /invalid digest "sha256:\.\.\/a+" in .*layers\[0\]/ },
  { name: 'layer digest upper-case hex', setup: (i) => editManifest(i, (m) => (m.layers[1].digest = m.layers[1].digest.toUpperCase().replace('SHA256', 'sha256'))), error: InvalidDigestError, message: /sha256 needs exactly 64 lowercase hex characters/ },
  { name: 'layer digest too short', setup: (i) => editManifest(i, (m) => (m.layers[1].digest = 'sha256:abcd')), error: InvalidDigestError, message: /sha256 needs exactly 64 lowercase hex/ },
  { name: 'sha512 manifest digest', setup: (i) => editIndex(i.dir, (x) => (entry(x).digest = 'sha512:' + 'ab'.repeat(64))), error: UnsupportedDigestAlgorithmError, message: /unsupported digest algorithm "sha512" .*only sha256 is supported/ },
  // --- layers
  { name: 'erofs layer of an unknown compressor', setup: (i) => editManifest(i, (m) => (m.layers[0].mediaType = 'application/vnd.stacker.image.layer.erofs+evil')), error: UnsupportedLayerError, message: /^unknown erofs media-type/ },
  { name: 'tar layer', setup: (i) => editManifest(i, (m) => (m.layers[1].mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip')), error: UnsupportedLayerError, message: /^unknown media-type application\/vnd\.oci\.image\.layer\.v1\.tar\+gzip/ },
  { name: 'root hash not hex', setup: (i) => editManifest(i, (m) => (m.layers[0].annotations['io.stackeroci.stacker.atomfs_verity_root_hash'] = 'zz'.repeat(32))), error: InvalidRootHashError, message: /atomfs_verity_root_hash: invalid root hash "z+": not hex/ },
  { name: 'root hash too short', setup: (i) => editManifest(i, (m) => (m.layers[0].annotations['io.stackeroci.stacker.atomfs_verity_root_hash'] = 'abcd')), error: InvalidRootHashError, message: /invalid root hash: unexpected key size for "abcd" \(4 hex digits, expected 64 for sha256\)/ },
  { name: 'root hash empty', setup: (i) => editManifest(i, (m) => (m.layers[0].annotations['io.stackeroci.stacker.atomfs_verity_root_hash'] = '')), error: InvalidRootHashError, message: /unexpected key size for ""/ },
  {
    name: 'legacy root hash bad',
    setup: (i) =>
      editManifest(i, (m) => {
        delete m.layers[1].annotations['io.stackeroci.stacker.atomfs_verity_root_hash'];
        m.layers[1].annotations['io.stackeroci.stacker.squashfs_verity_root_hash'] = 'ab'.repeat(33);
      }),
    error: InvalidRootHashError,
    message: /squashfs_verity_root_hash: invalid root hash: unexpected key size .*66 hex digits/,
  },
  { name: 'layer blob missing', setup: (i) => rmSync(i.written.layers[0]?.path as string), error: BlobError, message: /layer sha256:[0-9a-f]{64} is missing/ },
  // --- hostile strings stay on one short line
  { name: 'media type with a newline', setup: (i) => editManifest(i, (m) => (m.layers[0].mediaType = 'application/x\nevil')), error: UnsupportedLayerError, message: /^unknown media-type "application\/x\\nevil"/ },
  { name: 'megabyte-long digest', setup: (i) => editIndex(i.dir, (x) => (entry(x).digest = 'sha256:' + 'a'.repeat(1 << 20))), error: InvalidDigestError, message: /invalid digest "sha256:a+"… \(1048583 chars\)/ },
  { name: 'index.json syntax error on a later line', setup: (i) => writeFileSync(join(i.dir, 'index.json'), '{\n"manifests":\n[\n}\n'), error: MalformedJsonError, message: /not valid JSON/ },
  // --- bounds
  {
    name: 'oversize manifest blob',
    setup: (i) => editManifest(i, (m) => (m.annotations = { pad: 'x'.repeat(4 * 1024 * 1024) })),
    error: BlobTooLargeError,
    message: /bytes exceeds the 4194304-byte limit for JSON documents/,
  },
  {
    name: 'descriptor claims a huge manifest (rejected before reading)',
    setup: (i) => editIndex(i.dir, (x) => (entry(x).size = 2 ** 40)),
    error: BlobTooLargeError,
    message: /1099511627776 bytes exceeds the 4194304-byte limit/,
  },
  {
    name: 'oversize index.json',
    setup: (i) => editIndex(i.dir, (x) => (x.annotations = { pad: 'x'.repeat(5 * 1024 * 1024) })),
    error: BlobTooLargeError,
    message: /^file .*\/index\.json: \d+ bytes exceeds the 4194304-byte limit/,
  },
  { name: 'smaller maxJsonBytes honoured', options: { maxJsonBytes: 100 }, setup: () => {}, error: BlobTooLargeError, message: /exceeds the 100-byte limit/ },
  { name: 'nesting deeper than the default bound (8)', setup: (i) => nestBy(i, 9), error: IndexLimitError, message: /image indexes nested more than 8 levels deep/ },
  { name: 'nesting deeper than a custom bound', options: { maxIndexDepth: 2 }, setup: (i) => nestBy(i, 3), error: IndexLimitError, message: /nested more than 2 levels deep/ },
  {
    name: 'too many index blobs in a wide tree',
    options: { maxIndexBlobs: 5 },
    setup: (i) =>
      editIndex(i.dir, (x) => {
        const empty = putJsonBlob(i.dir, { schemaVersion: 2, manifests: [] }, INDEX_MT);
        const wide = putJsonBlob(i.dir, { schemaVersion: 2, manifests: Array(10).fill(empty) }, INDEX_MT);
        Object.assign(entry(x), wide);
      }),
    error: IndexLimitError,
    message: /more than 5 nested index blobs to read/,
  },
];

for (const c of cases) {
  test(`malformed: ${c.name}`, async (t) => {
    const img = await goodImage(t);
    // Sanity: the untouched image resolves, so the error below is caused by the setup.
    await resolveImage(img.dir, TAG);
    await c.setup(img);
    await assert.rejects(resolveImage(img.dir, c.tag ?? TAG, c.options), (e: unknown) => {
      assert.ok(e instanceof c.error, `expected ${c.error.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      assert.ok(e instanceof OciError);
      assert.equal(e.name, c.error.name);
      assert.match(e.message, c.message);
      if (process.env['OCI_SHOW_MESSAGES']) console.log(`${c.name}: ${e.name}: ${e.message}`);
      assert.ok(!/[\n\r]/.test(e.message), 'one-line message');
      assert.ok(e.message.length < 1000, `short message (${e.message.length} chars)`);
      return true;
    });
  });
}

test('depth bound is exact: 8 nested indexes still resolve', async (t) => {
  const img = await goodImage(t);
  nestBy(img, 8);
  const r = await resolveImage(img.dir, TAG);
  assert.equal(r.manifestDigest, img.written.manifestDigest);
});

test('a wrong field in an unrelated index entry still fails (Go unmarshals the whole index)', async (t) => {
  const img = await goodImage(t);
  editIndex(img.dir, (x) => x.manifests.push({ mediaType: MANIFEST_MT, digest: 'sha256:' + '0'.repeat(64), size: 'big' }));
  await assert.rejects(resolveImage(img.dir, TAG), /manifests\[1\]\.size: expected a non-negative integer, got string/);
});

test('a bad digest in an unrelated entry does not matter (validated on use, like Go)', async (t) => {
  const img = await goodImage(t);
  editIndex(img.dir, (x) => x.manifests.push({ mediaType: MANIFEST_MT, digest: 'md5:../x', size: 1, annotations: { [REF]: 'other' } }));
  const r = await resolveImage(img.dir, TAG);
  assert.equal(r.layers.length, 2);
  await assert.rejects(resolveImage(img.dir, 'other'), InvalidDigestError);
});

test('the writer refuses an invalid tag', async (t) => {
  const img = await goodImage(t);
  const f = randomFile(join(img.dir, '..'), 'x', 10);
  await assert.rejects(writeLayout(img.dir, { tag: 'no spaces', layers: [{ file: f }] }), InvalidReferenceError);
});

test('manifest blob replaced by a FIFO does not hang', async (t) => {
  const img = await goodImage(t);
  rmSync(img.written.manifestPath);
  execFileSync('mkfifo', [img.written.manifestPath]);
  await assert.rejects(resolveImage(img.dir, TAG), (e: unknown) => e instanceof BlobError && /is not a regular file/.test(e.message));
});
