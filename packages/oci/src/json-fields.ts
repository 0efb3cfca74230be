/**
 * Checked access to parsed JSON. The OCI documents come from disk and may be hostile, so every
 * field is type-checked before use and every failure names the file and the field path
 * (`manifests[2].digest`). Only the fields we read are walked: no recursion over arbitrary input.
 */
import { MalformedJsonError, quote } from './errors.js';
import { findJsonSyntaxError } from './json-syntax.js';

export type JsonObject = { readonly [key: string]: unknown };

/** Decode and parse one JSON document. */
export function parseJson(bytes: Uint8Array, path: string): unknown {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    // Never V8's message: it quotes the input, and the file may be a secret (index.json → /etc/shadow).
    const at = findJsonSyntaxError(text);
    const where = at === undefined ? `(${err instanceof Error ? err.name : 'error'})` : `at line ${at.line}, column ${at.column}: ${at.problem}`;
    throw new MalformedJsonError(path, undefined, `not valid JSON ${where}`);
  }
}

export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function join(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}.${key}`;
}

export function has(obj: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

/** A context bound to one file: `at(field)` helpers throw MalformedJsonError naming it. */
export class JsonFields {
  constructor(readonly path: string) {}

  fail(field: string | undefined, problem: string): never {
    throw new MalformedJsonError(this.path, field, problem);
  }

  object(value: unknown, field: string): JsonObject {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(field === '' ? undefined : field, `expected an object, got ${describeType(value)}`);
    }
    return value as JsonObject;
  }

  requiredString(obj: JsonObject, key: string, prefix: string): string {
    if (!has(obj, key)) this.fail(join(prefix, key), 'missing required field');
    return this.stringValue(obj[key], join(prefix, key));
  }

  optionalString(obj: JsonObject, key: string, prefix: string): string | undefined {
    if (!has(obj, key) || obj[key] === null) return undefined;
    return this.stringValue(obj[key], join(prefix, key));
  }

  /** A JSON integer in [0, 2^53): sizes and schema versions. */
  requiredCount(obj: JsonObject, key: string, prefix: string): number {
    if (!has(obj, key)) this.fail(join(prefix, key), 'missing required field');
    return this.countValue(obj[key], join(prefix, key));
  }

  optionalCount(obj: JsonObject, key: string, prefix: string): number | undefined {
    if (!has(obj, key) || obj[key] === null) return undefined;
    return this.countValue(obj[key], join(prefix, key));
  }

  /** `null` is accepted as an empty list: Go marshals a nil slice as null. */
  optionalArray(obj: JsonObject, key: string, prefix: string): readonly unknown[] | undefined {
    if (!has(obj, key) || obj[key] === null) return undefined;
    const value = obj[key];
    if (!Array.isArray(value)) this.fail(join(prefix, key), `expected an array, got ${describeType(value)}`);
    return value;
  }

  requiredArray(obj: JsonObject, key: string, prefix: string): readonly unknown[] {
    if (!has(obj, key)) this.fail(join(prefix, key), 'missing required field');
    const value = obj[key];
    if (!Array.isArray(value)) this.fail(join(prefix, key), `expected an array, got ${describeType(value)}`);
    return value;
  }

  /**
   * A string→string map (annotations). Rebuilt with Object.fromEntries, which defines own data
   * properties, so a hostile `__proto__` key stays a plain key. Look keys up with hasOwn.
   */
  optionalStringMap(obj: JsonObject, key: string, prefix: string): Readonly<Record<string, string>> | undefined {
    if (!has(obj, key) || obj[key] === null) return undefined;
    const field = join(prefix, key);
    const map = this.object(obj[key], field);
    const entries: [string, string][] = [];
    for (const [k, v] of Object.entries(map)) {
      if (typeof v !== 'string') this.fail(`${field}[${quote(k)}]`, `expected a string, got ${describeType(v)}`);
      entries.push([k, v]);
    }
    return Object.fromEntries(entries);
  }

  private stringValue(value: unknown, field: string): string {
    if (typeof value !== 'string') this.fail(field, `expected a string, got ${describeType(value)}`);
    return value;
  }

  private countValue(value: unknown, field: string): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      this.fail(field, `expected a non-negative integer, got ${typeof value === 'number' ? String(value) : describeType(value)}`);
    }
    return value;
  }
}
