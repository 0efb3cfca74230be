/**
 * Where a JSON text breaks, said without quoting it. V8's JSON.parse messages quote a snippet of
 * the input ("Unexpected token 'r', "root:$6$..." is not valid JSON"), and the file given as
 * index.json may be anything a user can point us at (/etc/shadow): our messages name the line,
 * the column and what was expected there, never the bytes. Only run after JSON.parse failed, so
 * it need not build anything; iterative, so no nesting depth can exhaust the stack.
 */

export interface JsonSyntaxProblem {
  /** UTF-16 index into the text where the problem was seen. */
  readonly offset: number;
  readonly line: number;
  readonly column: number;
  readonly problem: string;
}

const enum Expect {
  /** Any JSON value. */
  Value,
  /** A value or the `]` of an empty array. */
  ValueOrClose,
  /** A property name or the `}` of an empty object. */
  KeyOrClose,
  /** A property name (after a comma). */
  Key,
  /** What follows a complete value. */
  After,
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const ESCAPES = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't']);
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;

function position(text: string, offset: number, problem: string): JsonSyntaxProblem {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { offset, line, column: offset - lineStart + 1, problem };
}

/** Index after the string starting at `start` (a `"`), or a problem. */
function scanString(text: string, start: number): number | { at: number; problem: string } {
  let i = start + 1;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c < 0x20) return { at: i, problem: 'control character inside a string' };
    if (c === 0x5c) {
      const e = text[i + 1];
      if (e === undefined) break;
      if (e === 'u') {
        if (!HEX4.test(text.slice(i + 2, i + 6))) return { at: i + 1, problem: 'bad \\u escape inside a string' };
        i += 6;
        continue;
      }
      if (!ESCAPES.has(e)) return { at: i, problem: 'bad escape inside a string' };
      i += 2;
      continue;
    }
    i++;
  }
  return { at: start, problem: 'a string that never ends' };
}

/** The first syntax error of `text`, or undefined if it is valid JSON. */
export function findJsonSyntaxError(text: string): JsonSyntaxProblem | undefined {
  const stack: number[] = []; // 0x7b '{' or 0x5b '['
  let expect = Expect.Value;
  let i = 0;
  const n = text.length;
  const fail = (at: number, problem: string): JsonSyntaxProblem => position(text, at, problem);
  for (;;) {
    while (i < n && WS.has(text.charCodeAt(i))) i++;
    if (i >= n) {
      if (expect === Expect.After && stack.length === 0) return undefined;
      return fail(n, n === 0 || text.trim() === '' ? 'the file is empty' : 'the document ends too early');
    }
    const c = text.charCodeAt(i);
    if (expect === Expect.After) {
      const top = stack[stack.length - 1];
      if (top === undefined) return fail(i, 'unexpected data after the end of the document');
      if (c === 0x2c) {
        expect = top === 0x7b ? Expect.Key : Expect.Value;
        i++;
      } else if ((top === 0x7b && c === 0x7d) || (top === 0x5b && c === 0x5d)) {
        stack.pop();
        i++;
      } else {
        return fail(i, top === 0x7b ? "expected ',' or '}' after a property value" : "expected ',' or ']' after an array element");
      }
      continue;
    }
    if (expect === Expect.Key || expect === Expect.KeyOrClose) {
      if (expect === Expect.KeyOrClose && c === 0x7d) {
        stack.pop();
        i++;
        expect = Expect.After;
        continue;
      }
      if (c !== 0x22) return fail(i, expect === Expect.KeyOrClose ? "expected a property name or '}'" : 'expected a property name (in double quotes)');
      const end = scanString(text, i);
      if (typeof end !== 'number') return fail(end.at, end.problem);
      i = end;
      while (i < n && WS.has(text.charCodeAt(i))) i++;
      if (text.charCodeAt(i) !== 0x3a) return fail(i, "expected ':' after a property name");
      i++;
      expect = Expect.Value;
      continue;
    }
    // A value (or, right after '[', the ']' of an empty array).
    if (expect === Expect.ValueOrClose && c === 0x5d) {
      stack.pop();
      i++;
      expect = Expect.After;
      continue;
    }
    if (c === 0x7b || c === 0x5b) {
      stack.push(c);
      i++;
      expect = c === 0x7b ? Expect.KeyOrClose : Expect.ValueOrClose;
      continue;
    }
    if (c === 0x22) {
      const end = scanString(text, i);
      if (typeof end !== 'number') return fail(end.at, end.problem);
      i = end;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (m === null || m[0] === '-') return fail(i, 'malformed number');
      i += m[0].length;
    } else {
      const word = text.startsWith('true', i) ? 'true' : text.startsWith('false', i) ? 'false' : text.startsWith('null', i) ? 'null' : undefined;
      if (word === undefined) return fail(i, stack.length === 0 ? 'expected a JSON document (an object)' : 'expected a value');
      i += word.length;
    }
    expect = Expect.After;
  }
}
