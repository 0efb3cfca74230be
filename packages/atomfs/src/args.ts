import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync } from 'node:fs';
import { UsageError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parse a subcommand's arguments. Flags may stand before or after positionals and long flags may
 * be written with one dash (`-persist x`), as Go atomfs (urfave/cli v1) accepts.
 */
export interface Parsed<O extends Options> {
  values: { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string };
  positionals: string[];
}

export function parse<O extends Options>(argv: string[], options: O): Parsed<O> {
  const long = new Set(Object.keys(options));
  const normalized = argv.map((a) => {
    const m = /^-([a-z][a-z-]+)(=.*)?$/.exec(a);
    return m !== null && long.has(m[1]!) ? `-${a}` : a;
  });
  try {
    return parseArgs({ args: normalized, options, allowPositionals: true, strict: true }) as unknown as Parsed<O>;
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
}

/**
 * Node decodes argv as UTF-8 and turns bytes that are not UTF-8 into U+FFFD, losing them. The
 * kernel's copy in /proc/self/cmdline keeps them: `rawArgs(args)` gives `args` (a tail of
 * process.argv, as a command receives it) back with each byte that is not part of valid UTF-8
 * as the lone surrogate U+DC80 + byte (Python's "surrogateescape"), so parsing works on
 * strings as before and `argBytes` restores the exact bytes where they name a file. Valid UTF-8
 * arguments come back unchanged; when /proc does not match process.argv (another process
 * title, no /proc) `args` is returned as it is.
 */
export function rawArgs(args: string[]): string[] {
  const argv = process.argv;
  if (args.length === 0 || args.length > argv.length) return args;
  const offset = argv.length - args.length;
  for (let i = 0; i < args.length; i++) if (argv[offset + i] !== args[i]) return args;
  let cmdline: Buffer;
  try {
    cmdline = readFileSync('/proc/self/cmdline');
  } catch {
    return args;
  }
  // NUL-terminated items; node's own options (execArgv) come before the script, so the
  // command's arguments are the last ones.
  const items = splitNul(cmdline);
  if (items.length < args.length) return args;
  const tail = items.slice(items.length - args.length);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const raw = tail[i]!;
    if (raw.toString('utf8') !== args[i]) return args;
    out.push(escapeBytes(raw));
  }
  return out;
}

function splitNul(b: Buffer): Buffer[] {
  const items: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0) {
      items.push(b.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < b.length) items.push(b.subarray(start));
  return items;
}

/** Bytes as a string: valid UTF-8 decoded, every other byte as U+DC80 + byte. */
export function escapeBytes(raw: Buffer): string {
  const text = raw.toString('utf8');
  if (!text.includes('\ufffd') || Buffer.from(text).equals(raw)) return text;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let out = '';
  let i = 0;
  while (i < raw.length) {
    const n = utf8SequenceLength(raw, i);
    if (n === 0) {
      out += String.fromCharCode(0xdc00 + raw[i]!);
      i++;
    } else {
      out += decoder.decode(raw.subarray(i, i + n));
      i += n;
    }
  }
  return out;
}

/** Length of the valid UTF-8 sequence starting at `i` (1-4), or 0 when the byte there starts none. */
function utf8SequenceLength(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  let n: number;
  let min: number;
  if (c >= 0xc2 && c <= 0xdf) (n = 2), (min = 0x80);
  else if (c >= 0xe0 && c <= 0xef) (n = 3), (min = 0x800);
  else if (c >= 0xf0 && c <= 0xf4) (n = 4), (min = 0x10000);
  else return 0;
  if (i + n > b.length) return 0;
  let cp = c & (0xff >> (n + 1));
  for (let k = 1; k < n; k++) {
    const d = b[i + k]!;
    if ((d & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

/** The bytes an argument stands for: the inverse of the escaping rawArgs applies. */
export function argBytes(arg: string): Buffer {
  if (!/[\udc80-\udcff]/.test(arg)) return Buffer.from(arg);
  const parts: Buffer[] = [];
  let text = '';
  for (let i = 0; i < arg.length; i++) {
    const u = arg.charCodeAt(i);
    // A lone U+DC80..U+DCFF (not the low half of a pair: those were consumed with their high half).
    if (u >= 0xdc80 && u <= 0xdcff) {
      if (text !== '') parts.push(Buffer.from(text));
      text = '';
      parts.push(Buffer.of(u - 0xdc00));
    } else if (u >= 0xd800 && u <= 0xdbff && i + 1 < arg.length) {
      text += arg.slice(i, i + 2);
      i++;
    } else {
      text += arg[i];
    }
  }
  if (text !== '') parts.push(Buffer.from(text));
  return Buffer.concat(parts);
}

/** A file-system path argument: a string when it is valid UTF-8, else its exact bytes (node:fs takes both). */
export function pathArg(arg: string): string | Buffer {
  const b = argBytes(arg);
  return b.toString('utf8') === arg ? arg : b;
}
