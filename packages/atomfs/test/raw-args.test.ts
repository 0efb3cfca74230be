/**
 * Raw argv bytes (issue 14): the escaping rawArgs applies must be Python's "surrogateescape"
 * (PEP 383, what os.fsdecode does), and argBytes must undo it exactly. Python decodes every
 * sample independently. (The CLI path end to end: test/kernel-edge-cases.test.ts.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { argBytes, escapeBytes, pathArg } from '../src/args.js';

/** Byte strings that stress the UTF-8 decoder: random bytes, truncated and overlong sequences, surrogates, U+FFFD itself. */
function samples(): Buffer[] {
  const fixed = [
    '', 'plain', 'caf\u00e9', '\ufffd', '\u{10080}', '\u{1f600}x',
  ].map((s) => Buffer.from(s));
  const raw = [
    [0xff], [0xfe, 0xff], [0x80], [0xc3], [0xc3, 0x28], [0xe2, 0x82], [0xe2, 0x82, 0x28], [0xf0, 0x9f, 0x98], [0xc0, 0xaf],
    [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xed, 0xb2, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80],
    [0x78, 0xff, 0xfe], [0xef, 0xbf, 0xbd, 0xff],
  ].map((b) => Buffer.from(b));
  const random: Buffer[] = [];
  for (let i = 0; i < 300; i++) random.push(randomBytes(1 + (i % 24)));
  // Mostly valid UTF-8 with a stray byte somewhere.
  for (let i = 0; i < 100; i++) {
    const b = Buffer.from(`n\u00e9\u4e2d\u{1f600}-${i}`);
    b[i % b.length] = 0x80 + (i % 0x80);
    random.push(b);
  }
  return [...fixed, ...raw, ...random];
}

test('escapeBytes is surrogateescape (as python3 decodes), argBytes its inverse', () => {
  const all = samples();
  const script = 'import sys, json\nfor line in sys.stdin:\n    b = bytes.fromhex(line.strip())\n    print(json.dumps([ord(c) for c in b.decode("utf-8", "surrogateescape")]))';
  const r = spawnSync('python3', ['-c', script], { input: all.map((b) => b.toString('hex')).join('\n') + '\n', encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const expected = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as number[]);
  assert.equal(expected.length, all.length);
  all.forEach((b, i) => {
    const s = escapeBytes(b);
    // Python counts code points; JS strings hold UTF-16 code units: compare code points.
    assert.deepEqual([...s].map((c) => c.codePointAt(0)), expected[i], `decoding of ${b.toString('hex')}`);
    assert.ok(argBytes(s).equals(b), `round trip of ${b.toString('hex')}`);
    const p = pathArg(s);
    assert.ok(typeof p === 'string' ? Buffer.from(p).equals(b) : p.equals(b), `pathArg of ${b.toString('hex')}`);
    assert.equal(typeof p === 'string', b.toString('utf8') === s && Buffer.from(s).equals(b));
  });
});

