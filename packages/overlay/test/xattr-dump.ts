/**
 * Every xattr under a directory tree, read by one `getfattr -R` run (node has no xattr API).
 * Keys are absolute paths as latin1 strings (bytes 1:1), values raw bytes.
 */
import { spawnSync } from 'node:child_process';

export type XattrMap = Map<string, Map<string, Buffer>>;

/** getfattr writes `\ooo` octal escapes for a few bytes of file names (newline, backslash, ...). */
function unescapeName(s: string): string {
  return s.replace(/\\([0-7]{3}|\\)/g, (_m, g: string) => (g === '\\' ? '\\' : String.fromCharCode(parseInt(g, 8))));
}

export function dumpXattrs(root: string, pattern = '-'): XattrMap {
  const r = spawnSync('getfattr', ['-R', '-h', '-d', '-m', pattern, '-e', 'hex', '--absolute-names', root], {
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw new Error(`getfattr could not run (is package "attr" installed?): ${r.error.message}`);
  // getfattr exits 1 when some file had no xattrs matching; real failures print to stderr.
  const err = r.stderr.toString();
  if (r.status !== 0 && err.trim() !== '') throw new Error(`getfattr -R ${root} failed: ${err}`);
  const out: XattrMap = new Map();
  let current: Map<string, Buffer> | undefined;
  for (const line of r.stdout.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) {
      current = new Map();
      out.set(unescapeName(line.slice('# file: '.length)), current);
    } else if (line !== '' && current !== undefined) {
      const eq = line.indexOf('=');
      const name = eq < 0 ? line : line.slice(0, eq);
      const value = eq < 0 ? '' : line.slice(eq + 1);
      if (!value.startsWith('0x') && value !== '') throw new Error(`getfattr printed an unexpected value: ${line}`);
      current.set(name, Buffer.from(value.slice(2), 'hex'));
    }
  }
  return out;
}
