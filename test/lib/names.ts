/**
 * File names are bytes, not text: squashfs, the kernel and FUSE pass them through unchanged, and
 * the test tree contains names that are not valid UTF-8. Snapshot keys must therefore be a
 * lossless, injective encoding of the bytes that is still readable in a diff:
 *
 *   - a name that is valid UTF-8 and contains no backslash and no control character is its own key;
 *   - any other name is written as printable ASCII with every other byte (and `\`) as `\xNN`.
 *
 * The two forms cannot collide: escaped keys always contain a backslash, literal keys never do.
 * Path keys are "/" for the root and "/" + names joined with "/" below it.
 */

import { runSync } from './exec.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class BadNameKeyError extends Error {
  constructor(readonly key: string) {
    super(`not a name key: ${JSON.stringify(key)}`);
    this.name = new.target.name;
  }
}

// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /[\\\u0000-\u001f\u007f]/;

export function nameToKey(name: Uint8Array): string {
  let text: string | undefined;
  try {
    text = utf8.decode(name);
  } catch {
    text = undefined;
  }
  if (text !== undefined && !NEEDS_ESCAPE.test(text)) return text;
  let s = '';
  for (const b of name) {
    s += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : '\\x' + b.toString(16).padStart(2, '0');
  }
  return s;
}

export function keyToName(key: string): Buffer {
  if (!key.includes('\\')) return Buffer.from(key, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c === 0x5c) {
      const hex = key.slice(i + 2, i + 4);
      if (key[i + 1] !== 'x' || !/^[0-9a-f]{2}$/.test(hex)) throw new BadNameKeyError(key);
      out.push(parseInt(hex, 16));
      i += 3;
    } else if (c >= 0x20 && c < 0x7f) {
      out.push(c);
    } else {
      throw new BadNameKeyError(key);
    }
  }
  return Buffer.from(out);
}

/** Key of `name` inside the directory whose key is `parentKey`. */
export function childKey(parentKey: string, name: Uint8Array): string {
  return parentKey === '/' ? '/' + nameToKey(name) : parentKey + '/' + nameToKey(name);
}

/** The real path (as bytes, usable with every node:fs call) of path key `key` under `root`. */
export function keyToPath(root: string | Buffer, key: string): Buffer {
  const rootBuf = typeof root === 'string' ? Buffer.from(root, 'utf8') : root;
  if (key === '/') return rootBuf;
  if (!key.startsWith('/')) throw new BadNameKeyError(key);
  const parts = key.slice(1).split('/').map(keyToName);
  const sep = Buffer.from('/');
  const pieces: Buffer[] = [rootBuf];
  for (const p of parts) pieces.push(sep, p);
  return Buffer.concat(pieces);
}

/** Join a directory path (bytes) and a name (bytes). */
export function joinBytes(dir: Buffer | string, name: Buffer | string): Buffer {
  const d = typeof dir === 'string' ? Buffer.from(dir, 'utf8') : dir;
  const n = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  return Buffer.concat([d, Buffer.from('/'), n]);
}

// ---- the quoting of the attr tools (getfattr --dump output, setfattr --restore input) -----------
// getfattr prints file names raw except for `\` and non-printable ASCII controls, which it writes
// as a backslash and three octal digits ("\134", "\012"); bytes >= 0x80 come through unchanged.

/** Decode `\ooo` escapes of getfattr output into raw bytes. */
export function unquoteAttr(bytes: Buffer): Buffer {
  if (!bytes.includes(0x5c)) return bytes;
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x5c && i + 3 < bytes.length && isOctal(bytes[i + 1]) && isOctal(bytes[i + 2]) && isOctal(bytes[i + 3])) {
      out.push(((bytes[i + 1]! - 0x30) << 6) | ((bytes[i + 2]! - 0x30) << 3) | (bytes[i + 3]! - 0x30));
      i += 3;
    } else {
      out.push(b);
    }
  }
  return Buffer.from(out);
}

function isOctal(b: number | undefined): boolean {
  return b !== undefined && b >= 0x30 && b <= 0x37;
}

/** Quote raw bytes the way setfattr --restore expects: `\`, controls, `=` and DEL as `\ooo`. */
export function quoteAttr(bytes: Uint8Array): Buffer {
  const out: number[] = [];
  for (const b of bytes) {
    if (b < 0x20 || b === 0x7f || b === 0x5c || b === 0x3d) {
      for (const c of '\\' + b.toString(8).padStart(3, '0')) out.push(c.charCodeAt(0));
    } else {
      out.push(b);
    }
  }
  return Buffer.from(out);
}

/**
 * The metadir name atomfs gives a mount target: what systemd's own escaping makes of the path
 * (`systemd-escape --path`), the independent truth the tests hold atomfs to.
 */
export function metadirName(target: string): string {
  return runSync(['systemd-escape', '--path', target]).stdout.toString('utf8').trim();
}
