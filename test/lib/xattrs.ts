/**
 * Extended attributes through the independent attr tools: one `getfattr` process dumps a whole
 * tree, one `setfattr --restore` process writes many attributes (also on files whose names are not
 * UTF-8, which cannot be passed as command-line arguments from Node).
 */
import { resolve } from 'node:path';
import { run } from './exec.js';
import { childKey, quoteAttr, unquoteAttr } from './names.js';

export class XattrDumpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** name → lowercase hex value (no 0x). */
export type XattrMap = Record<string, string>;

/** Namespaces that are not part of the ground truth (LSM labels, ACLs: host-specific). */
export function isComparedXattr(name: string): boolean {
  return !name.startsWith('security.') && !name.startsWith('system.');
}

/**
 * xattrs of every entry below `root` (not following symlinks), keyed by path key ("/", "/a/b").
 * Entries without (compared) xattrs are absent from the map.
 */
export async function dumpXattrs(root: string): Promise<Map<string, XattrMap>> {
  const abs = resolve(root);
  const res = await run(['getfattr', '-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', abs], {
    allowFail: true,
    timeoutMs: 300_000,
  });
  if (res.status !== 0) {
    // "Operation not supported" means the filesystem has no xattrs at all (the kernel's squashfs
    // answers listxattr with EOPNOTSUPP for an image built with -no-xattrs): that reads as none.
    // Any other error (EIO, EACCES, ...) is a real failure of the filesystem under test.
    const errors = res.stderr
      .toString('utf8')
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.endsWith(': Operation not supported'));
    if (errors.length > 0 || res.status !== 1) {
      throw new XattrDumpError(`getfattr on ${abs} exited ${res.status}: ${errors.slice(0, 20).join('\n')}`);
    }
  }
  return parseDump(res.stdout, Buffer.from(abs, 'utf8'));
}

/** Parse `getfattr -d -e hex --absolute-names` output; paths are made relative to `rootBytes`. */
export function parseDump(out: Buffer, rootBytes: Buffer): Map<string, XattrMap> {
  const result = new Map<string, XattrMap>();
  const header = Buffer.from('# file: ');
  let current: XattrMap | undefined;
  let pos = 0;
  while (pos < out.length) {
    let nl = out.indexOf(0x0a, pos);
    if (nl < 0) nl = out.length;
    const line = out.subarray(pos, nl);
    pos = nl + 1;
    if (line.length === 0) {
      current = undefined;
      continue;
    }
    if (line.subarray(0, header.length).equals(header)) {
      const path = unquoteAttr(line.subarray(header.length));
      const key = relativeKey(path, rootBytes);
      current = {};
      result.set(key, current);
      continue;
    }
    if (current === undefined) throw new XattrDumpError(`getfattr output: attribute line outside a file block: ${line.toString('latin1')}`);
    const eq = line.indexOf(0x3d);
    if (eq < 0) throw new XattrDumpError(`getfattr output: no '=' in ${line.toString('latin1')}`);
    const name = unquoteAttr(line.subarray(0, eq)).toString('utf8');
    const value = line.subarray(eq + 1).toString('latin1');
    if (!/^0x([0-9a-f]{2})*$/i.test(value)) throw new XattrDumpError(`getfattr output: value of ${name} is not hex: ${value.slice(0, 80)}`);
    if (isComparedXattr(name)) current[name] = value.slice(2).toLowerCase();
  }
  for (const [k, v] of result) if (Object.keys(v).length === 0) result.delete(k);
  return result;
}

function relativeKey(path: Buffer, root: Buffer): string {
  if (path.equals(root)) return '/';
  if (path.length <= root.length + 1 || !path.subarray(0, root.length).equals(root) || path[root.length] !== 0x2f) {
    throw new XattrDumpError(`getfattr printed a path outside ${root.toString('utf8')}: ${path.toString('latin1')}`);
  }
  let key = '/';
  let start = root.length + 1;
  while (start <= path.length) {
    let end = path.indexOf(0x2f, start);
    if (end < 0) end = path.length;
    key = childKey(key, path.subarray(start, end));
    start = end + 1;
  }
  return key;
}

export interface XattrAssignment {
  path: Buffer | string;
  name: string;
  value: Buffer;
}

/** Set many xattrs with one `setfattr --restore=-` (does not follow symlinks' targets for names). */
export async function setXattrs(list: readonly XattrAssignment[]): Promise<void> {
  if (list.length === 0) return;
  const chunks: Buffer[] = [];
  for (const a of list) {
    const p = typeof a.path === 'string' ? Buffer.from(resolve(a.path), 'utf8') : a.path;
    if (p[0] !== 0x2f) throw new XattrDumpError(`setXattrs needs absolute paths, got ${p.toString('latin1')}`);
    chunks.push(Buffer.from('# file: '), quoteAttr(p), Buffer.from('\n'));
    chunks.push(quoteAttr(Buffer.from(a.name, 'utf8')), Buffer.from(`=0x${a.value.toString('hex')}\n\n`));
  }
  await run(['setfattr', '--restore=-'], { input: Buffer.concat(chunks) });
}
