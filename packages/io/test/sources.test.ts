import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BufferSource, ByteRangeError, FileSource, SourceTruncatedError, toAsync } from '../src/index.js';

function tempFile(bytes: Buffer): { file: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'atomfs-io-'));
  const file = join(dir, 'f');
  writeFileSync(file, bytes);
  return { file, done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('FileSource windows read what node:fs reads, sync, into a buffer and async; toAsync uses the async path', async () => {
  const bytes = randomBytes(70_000);
  const { file, done } = tempFile(bytes);
  try {
    const whole = readFileSync(file);
    const src = new FileSource(file, { offset: 1000, size: 60_000 });
    assert.equal(src.size, 60_000);
    for (const [p, l] of [[0, 1], [123, 4096], [59_999, 1], [0, 60_000]] as const) {
      const want = whole.subarray(1000 + p, 1000 + p + l);
      assert.deepEqual(src.read(p, l), want);
      const dst = Buffer.alloc(l + 3);
      src.readInto(p, l, dst);
      assert.deepEqual(dst.subarray(0, l), want);
      assert.deepEqual(await src.readAsync(p, l), want);
      assert.deepEqual(await toAsync(src).read(p, l), want);
    }
    assert.throws(() => src.read(59_999, 2), ByteRangeError);
    assert.throws(() => src.read(-1, 1), ByteRangeError);
    await assert.rejects(src.readAsync(60_000, 1), ByteRangeError);
    // The file shrinks under the source: a truncation error, never a short buffer.
    truncateSync(file, 30_000);
    assert.throws(() => src.read(40_000, 10), SourceTruncatedError);
    await assert.rejects(src.readAsync(28_000, 4000), SourceTruncatedError);
    src.close();
    assert.equal(src.fd, -1);
    assert.throws(() => new FileSource(file, { offset: 30_001 }), ByteRangeError);
  } finally {
    done();
  }
});

test('BufferSource reads views of its buffer; subclasses give their own errors', async () => {
  const buf = Buffer.from('0123456789');
  const src = new BufferSource(buf, 'ten');
  assert.equal(src.read(2, 3).toString(), '234');
  assert.equal(src.read(2, 3).buffer, buf.buffer, 'a view, not a copy');
  assert.equal((await toAsync(src).read(8, 2)).toString(), '89');
  assert.throws(() => src.read(8, 3), /ten: read of 3 bytes at offset 8 is outside \[0, 10\)/);
  class Mine extends BufferSource {
    protected override rangeError(): Error {
      return new TypeError('mine');
    }
  }
  assert.throws(() => new Mine(buf).read(11, 1), TypeError);
});
