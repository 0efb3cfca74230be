/**
 * Issue 12's OCI findings, each a case that was accepted or misreported before: media types
 * matched by prefix, no cap on the layer count, an unchecked config blob, JSON errors that quote
 * the file, and a 63-digit root hash called "not hex".
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  BlobError,
  DigestMismatchError,
  DEFAULT_MAX_LAYERS,
  InvalidRootHashError,
  LAYER_MEDIA_TYPES,
  MalformedJsonError,
  OciError,
  TooManyLayersError,
  UnsupportedLayerError,
  resolveImage,
  writeLayout,
} from '../src/index.js';
import { findJsonSyntaxError } from '../src/json-syntax.js';
import { TAG, editIndex, editManifest, goodImage, putJsonBlob, randomFile, tempDir } from './helpers.js';

const SQUASHFS = 'application/vnd.stacker.image.layer.squashfs';
const ROOT_HASH = 'io.stackeroci.stacker.atomfs_verity_root_hash';

function oneLine(e: unknown): OciError {
  assert.ok(e instanceof OciError, `expected an OciError, got ${String(e)}`);
  assert.ok(!/[\n\r]/.test(e.message), `one line: ${e.message}`);
  return e;
}

// ---- media types --------------------------------------------------------------------------------

test('every stacker squashfs media type (with and without +verity) resolves', async (t) => {
  const expected = [SQUASHFS, `${SQUASHFS}+gzip`, `${SQUASHFS}+zstd`, `${SQUASHFS}+gzip+verity`, `${SQUASHFS}+zstd+verity`];
  const squashfsTypes = [...LAYER_MEDIA_TYPES.entries()].filter(([, t]) => t.fsType === 'squashfs').map(([k]) => k);
  assert.deepEqual(squashfsTypes.sort(), [...expected].sort(), 'the table holds exactly the stacker squashfs types');
  const work = tempDir(t);
  for (const [i, mediaType] of expected.entries()) {
    const dir = join(work, `oci${i}`);
    await writeLayout(dir, { tag: TAG, layers: [{ file: randomFile(work, `l${i}`, 4096), mediaType }] });
    const r = await resolveImage(dir, TAG);
    assert.equal(r.layers[0]?.mediaType, mediaType);
    assert.equal(r.layers[0]?.fsType, 'squashfs');
  }
});

for (const bad of [`${SQUASHFS}+evil`, `${SQUASHFS}x`, `${SQUASHFS}+zstd+verity+x`, `${SQUASHFS}+zstd `, `${SQUASHFS}+verity`, SQUASHFS.toUpperCase(), 'application/vnd.oci.image.layer.squashfs']) {
  test(`media type ${JSON.stringify(bad)} is refused, naming the layer and the type`, async (t) => {
    const img = await goodImage(t);
    editManifest(img, (m) => (m.layers[1].mediaType = bad));
    await assert.rejects(resolveImage(img.dir, TAG), (e: unknown) => {
      const err = oneLine(e);
      assert.ok(err instanceof UnsupportedLayerError, err.message);
      assert.equal(err.mediaType, bad);
      assert.ok(err.message.includes(img.written.layers[1]!.digest), `names the layer: ${err.message}`);
      assert.ok(err.message.includes(/^[\x21-\x7e]+$/.test(bad) ? bad : JSON.stringify(bad)), `names the media type: ${err.message}`);
      return true;
    });
  });
}

// ---- layer count --------------------------------------------------------------------------------

test(`more than ${DEFAULT_MAX_LAYERS} layers: refused before any layer blob is looked at`, async (t) => {
  const img = await goodImage(t);
  // 8000 descriptors of blobs that do not exist: only a cap checked first can answer TooManyLayers.
  editManifest(img, (m) => {
    m.layers = Array.from({ length: 8000 }, (_, i) => ({ mediaType: `${SQUASHFS}+zstd`, digest: `sha256:${i.toString(16).padStart(64, '0')}`, size: 4096 }));
  });
  const started = process.hrtime.bigint();
  await assert.rejects(resolveImage(img.dir, TAG), (e: unknown) => {
    const err = oneLine(e);
    assert.ok(err instanceof TooManyLayersError, err.message);
    assert.match(err.message, /has 8000 layers; at most 500 can be mounted/);
    return true;
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.ok(ms < 2000, `refused in ${ms.toFixed(0)} ms`);
});

test(`exactly ${DEFAULT_MAX_LAYERS} layers still resolve; ${DEFAULT_MAX_LAYERS + 1} do not`, async (t) => {
  const work = tempDir(t);
  const file = randomFile(work, 'l', 4096);
  const dir = join(work, 'oci');
  await writeLayout(dir, { tag: TAG, layers: Array.from({ length: DEFAULT_MAX_LAYERS }, () => ({ file })) });
  assert.equal((await resolveImage(dir, TAG)).layers.length, DEFAULT_MAX_LAYERS);
  await writeLayout(dir, { tag: 'over', layers: Array.from({ length: DEFAULT_MAX_LAYERS + 1 }, () => ({ file })) });
  await assert.rejects(resolveImage(dir, 'over'), TooManyLayersError);
  await assert.rejects(resolveImage(dir, TAG, { maxLayers: 10 }), /at most 10 can be mounted/);
});

// ---- config blob --------------------------------------------------------------------------------

function configPath(img: Awaited<ReturnType<typeof goodImage>>): string {
  return join(img.dir, 'blobs', 'sha256', img.written.configDigest.slice('sha256:'.length));
}

test('a config blob whose bytes do not match its digest is refused (same size)', async (t) => {
  const img = await goodImage(t);
  await resolveImage(img.dir, TAG);
  const path = configPath(img);
  const bytes = readFileSync(path);
  bytes[bytes.indexOf('linux')] = 'L'.charCodeAt(0);
  writeFileSync(path, bytes);
  // Independent check that the file no longer has its name's digest.
  const r = spawnSync('sha256sum', [path], { encoding: 'utf8' });
  assert.notEqual(r.stdout.split(' ')[0], img.written.configDigest.slice(7));
  await assert.rejects(resolveImage(img.dir, TAG), (e: unknown) => {
    const err = oneLine(e);
    assert.ok(err instanceof DigestMismatchError, err.message);
    assert.ok(err.message.includes(path), err.message);
    return true;
  });
});

test('a missing config blob is refused', async (t) => {
  const img = await goodImage(t);
  rmSync(configPath(img));
  await assert.rejects(resolveImage(img.dir, TAG), (e: unknown) => oneLine(e) instanceof BlobError && /does not exist/.test((e as Error).message));
});

// ---- JSON that is not JSON: named, never quoted ---------------------------------------------------

const SECRET = 'root:$6$Qx7SeCrEt0nly$hashhashhash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n';

function assertNoContent(message: string): void {
  for (const piece of ['root', 'SeCrEt', '$6$', 'hashhash', 'daemon', '19000']) assert.ok(!message.includes(piece), `message quotes the file (${piece}): ${message}`);
}

test('index.json that is not JSON (a shadow file): named with line and column, content never shown', async (t) => {
  const img = await goodImage(t);
  writeFileSync(join(img.dir, 'index.json'), SECRET);
  await assert.rejects(resolveImage(img.dir, TAG), (e: unknown) => {
    const err = oneLine(e);
    assert.ok(err instanceof MalformedJsonError, err.message);
    assert.match(err.message, /index\.json: not valid JSON at line 1, column 1: expected a JSON document/);
    assertNoContent(err.message);
    return true;
  });
});

test('a manifest and a config blob that are not JSON: named, content never shown', async (t) => {
  const img = await goodImage(t);
  const bytes = Buffer.from(SECRET);
  // Store the secret as a blob with a correct digest, then point the index at it as the manifest.
  const hex = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(img.dir, 'blobs', 'sha256', hex), bytes);
  editIndex(img.dir, (x) => Object.assign(x.manifests[0], { digest: `sha256:${hex}`, size: bytes.length }));
  await assert.rejects(resolveImage(img.dir, TAG), (e: unknown) => {
    const err = oneLine(e);
    assert.ok(err instanceof MalformedJsonError && err.message.includes(hex) && /not valid JSON at line 1, column 1/.test(err.message), err.message);
    assertNoContent(err.message);
    return true;
  });

  const img2 = await goodImage(t);
  editManifest(img2, (m) => Object.assign(m.config, { digest: `sha256:${hex}`, size: bytes.length }));
  writeFileSync(join(img2.dir, 'blobs', 'sha256', hex), bytes);
  await assert.rejects(resolveImage(img2.dir, TAG), (e: unknown) => {
    const err = oneLine(e);
    assert.ok(err instanceof MalformedJsonError && err.message.includes(hex), err.message);
    assertNoContent(err.message);
    return true;
  });
});

test('config that is JSON but not an object is refused', async (t) => {
  const img = await goodImage(t);
  const desc = putJsonBlob(img.dir, ['not', 'a', 'config'], 'application/vnd.oci.image.config.v1+json');
  editManifest(img, (m) => (m.config = desc));
  await assert.rejects(resolveImage(img.dir, TAG), /malformed JSON in .*: expected an object, got array/);
});

/** Python's json module (an independent parser) on `text`: undefined when it parses, else its line/column. */
function pythonJsonError(text: string): { line: number; column: number } | undefined {
  const r = spawnSync('python3', ['-c', 'import json,sys\ntry:\n json.loads(sys.stdin.read())\nexcept json.JSONDecodeError as e:\n print(e.lineno, e.colno)'], {
    input: text,
    encoding: 'utf8',
  });
  if (r.error) throw new Error(`python3 is needed for this test (apt-get install python3): ${r.error.message}`);
  const out = r.stdout.trim();
  if (out === '') return undefined;
  const [line, column] = out.split(' ').map(Number);
  return { line: line!, column: column! };
}

test('the JSON error locator agrees with JSON.parse on validity and with python3 on the position', () => {
  const docs = [
    SECRET,
    '',
    '   \n  ',
    '{"a": tru}',
    '{"a": 1',
    '{"a":1} x',
    '{"a":"b\u0001"}',
    '[1,]',
    '{a:1}',
    '{"a" 1}',
    '{"a":1,}',
    '\u0000\u0001ELF',
    '{"a":1}}',
    '{"a":"\\x"}',
    '{"a":"\\u12G4"}',
    '{"a":"unterminated',
    '{"manifests": [\n  {"x": 1},\n  {"y": -}\n]}',
    '{"n": 01}',
    '{"n": 1.}',
    '{"n": 1e}',
    '[' .repeat(100000),
    '{"ok": [1, 2.5e-3, true, false, null, "s\\n\\u00e9", {}, []]}',
    '\ufeff{}',
  ];
  for (const text of docs) {
    let valid = true;
    try {
      JSON.parse(text);
    } catch {
      valid = false;
    }
    const ours = findJsonSyntaxError(text);
    assert.equal(ours === undefined, valid, `validity of ${JSON.stringify(text.slice(0, 40))}`);
    if (text.startsWith('[[[[')) continue; // python's recursion limit, not a syntax error
    const py = pythonJsonError(text);
    assert.equal(py === undefined, valid, `python3 agrees on validity of ${JSON.stringify(text.slice(0, 40))}`);
    if (ours !== undefined && py !== undefined && !text.startsWith('\ufeff')) {
      assert.deepEqual({ line: ours.line, column: ours.column }, py, `position in ${JSON.stringify(text.slice(0, 40))} (${ours.problem})`);
    }
  }
});

// ---- root hash length ---------------------------------------------------------------------------

test('a 63-hex-digit root hash is reported as the wrong length, not as "not hex"', async (t) => {
  for (const [value, digits] of [['a'.repeat(63), 63], ['b'.repeat(65), 65], ['c'.repeat(62), 62]] as const) {
    const img = await goodImage(t);
    editManifest(img, (m) => (m.layers[0].annotations[ROOT_HASH] = value));
    await assert.rejects(resolveImage(img.dir, TAG), (e: unknown) => {
      const err = oneLine(e);
      assert.ok(err instanceof InvalidRootHashError, err.message);
      assert.doesNotMatch(err.message, /not hex/);
      assert.match(err.message, new RegExp(`unexpected key size .*\\(${digits} hex digits, expected 64 for sha256\\)`));
      return true;
    });
  }
  const img = await goodImage(t);
  editManifest(img, (m) => (m.layers[0].annotations[ROOT_HASH] = 'g'.repeat(63)));
  await assert.rejects(resolveImage(img.dir, TAG), /: not hex$/);
});
