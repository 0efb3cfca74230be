import { parseArgs, type ParseArgsConfig } from 'node:util';
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
