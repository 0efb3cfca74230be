/**
 * Builds layer directories from a small declarative spec, in one of several on-disk dialects,
 * so the same logical layer set can be written the kernel's way (for a kernel mount) and the
 * AUFS/OCI `.wh.` way or mixed (for our overlay) and the two views compared.
 *
 * Paths are latin1 strings: each char is one byte of the name, so non-UTF-8 names are easy.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, linkSync, lchownSync, lutimesSync, mkdirSync, readdirSync, lstatSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

/** How a directory is made opaque: an xattr under one of two prefixes, or an AUFS marker. */
export type OpaqueMarker =
  | 'trusted' // trusted.overlay.opaque=y
  | 'user' // user.overlay.opaque=y
  | 'wh' // entry .wh..wh..opq inside the directory
  | 'wh-sibling'; // AUFS/OCI "replaced directory": .wh.NAME next to the new directory NAME

/** How a name is deleted. */
export type WhiteoutStyle =
  | 'chr' // char device 0:0 (kernel)
  | 'wh' // empty file .wh.NAME (AUFS/OCI)
  | 'x'; // empty file with overlay.whiteout xattr; parent marked overlay.opaque=x (kernel >= 6.7)

export interface Owner {
  uid: number;
  gid: number;
}

export type Op =
  | { file: string; data?: string | Buffer; mode?: number; owner?: Owner; xattrs?: Record<string, string> }
  | { dir: string; mode?: number; owner?: Owner; xattrs?: Record<string, string>; opaque?: OpaqueMarker }
  | { symlink: string; target: string; owner?: Owner }
  | { link: string; to: string }
  | { whiteout: string; style?: WhiteoutStyle }
  | { fifo: string; mode?: number }
  | { dev: string; type: 'c' | 'b'; major: number; minor: number; mode?: number };

export interface Dialect {
  /**
   * For a kernel mount: every opaque marker becomes this xattr prefix and `.wh.`-file whiteouts
   * become char devices. Undefined keeps each op's own marker.
   */
  xattrPrefix?: 'trusted' | 'user';
}

function bytes(path: string): Buffer {
  return Buffer.from(path, 'latin1');
}

/**
 * Spawning a tool per xattr or device node costs tens of milliseconds on a busy machine, so a
 * layer's xattrs and special files are collected and made by one setfattr and one sh run.
 */
class Deferred {
  private readonly xattrs: string[] = [];
  private readonly commands: string[] = [];
  private readonly args: string[] = [];

  setx(path: string, name: string, value: string | Buffer): void {
    const v = typeof value === 'string' ? Buffer.from(value) : value;
    this.xattrs.push(`# file: ${escapePath(path)}`, `${name}=0x${v.toString('hex')}`, '');
  }

  /** A command whose argv words are passed as positional parameters (no quoting problems). */
  run(tool: string, ...argv: string[]): void {
    const refs = argv.map((a) => {
      this.args.push(a);
      return `"\${${this.args.length}}"`;
    });
    this.commands.push(`${tool} ${refs.join(' ')}`);
  }

  flush(): void {
    if (this.commands.length > 0) {
      execFileSync('sh', ['-ec', this.commands.join('\n'), 'sh', ...this.args], { stdio: 'pipe' });
    }
    if (this.xattrs.length > 0) {
      execFileSync('setfattr', ['-h', '--restore=-'], { input: Buffer.from(this.xattrs.join('\n') + '\n', 'latin1'), stdio: ['pipe', 'pipe', 'pipe'] });
    }
  }
}

/** setfattr --restore reads paths with `\ooo` escapes; escape everything not plainly printable. */
function escapePath(path: string): string {
  let out = '';
  for (const ch of path) {
    const c = ch.charCodeAt(0);
    out += c > 0x20 && c < 0x7f && ch !== '\\' ? ch : '\\' + c.toString(8).padStart(3, '0');
  }
  return out;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * Write `ops` under `root` (created if needed). With a dialect.xattrPrefix the layer is made
 * kernel-readable: AUFS markers become the equivalent char devices / opaque xattrs and every
 * overlay xattr uses that prefix. Then every entry gets a deterministic mtime (a hash of its path),
 * so two dialects of one spec have equal timestamps.
 */
export function buildLayer(root: string, ops: readonly Op[], dialect: Dialect = {}): void {
  mkdirSync(root, { recursive: true });
  const at = (p: string): string => (p === '' ? root : `${root}/${p}`);
  const ensureParent = (p: string): void => {
    mkdirSync(bytes(at(parentOf(p))), { recursive: true, mode: 0o755 });
  };
  const kernel = dialect.xattrPrefix !== undefined;
  const later = new Deferred();
  const setx = (path: string, name: string, value: string | Buffer): void => later.setx(path, name, value);
  for (const op of ops) {
    if ('file' in op) {
      ensureParent(op.file);
      const p = bytes(at(op.file));
      writeFileSync(p, op.data ?? `content of ${op.file}\n`);
      chmodSync(p, op.mode ?? 0o644);
      if (op.owner) lchownSync(p, op.owner.uid, op.owner.gid);
      for (const [k, v] of Object.entries(op.xattrs ?? {})) setx(at(op.file), k, v);
    } else if ('dir' in op) {
      ensureParent(op.dir);
      const p = bytes(at(op.dir));
      mkdirSync(p, { recursive: true });
      chmodSync(p, op.mode ?? 0o755);
      if (op.owner) lchownSync(p, op.owner.uid, op.owner.gid);
      for (const [k, v] of Object.entries(op.xattrs ?? {})) setx(at(op.dir), k, v);
      if (op.opaque !== undefined) {
        const marker = dialect.xattrPrefix ?? op.opaque;
        if (marker === 'trusted' || marker === 'user') setx(at(op.dir), `${marker}.overlay.opaque`, 'y');
        else if (marker === 'wh') writeFileSync(bytes(`${at(op.dir)}/.wh..wh..opq`), '');
        else writeFileSync(bytes(at(`${parentOf(op.dir) === '' ? '' : parentOf(op.dir) + '/'}.wh.${baseOf(op.dir)}`)), '');
      }
    } else if ('symlink' in op) {
      ensureParent(op.symlink);
      symlinkSync(bytes(op.target), bytes(at(op.symlink)));
      if (op.owner) lchownSync(bytes(at(op.symlink)), op.owner.uid, op.owner.gid);
    } else if ('link' in op) {
      ensureParent(op.link);
      linkSync(bytes(at(op.to)), bytes(at(op.link)));
    } else if ('whiteout' in op) {
      ensureParent(op.whiteout);
      const style = op.style ?? 'chr';
      if (style === 'chr' || (style === 'wh' && kernel)) {
        later.run('mknod', '--', at(op.whiteout), 'c', '0', '0');
      } else if (style === 'wh') {
        writeFileSync(bytes(at(`${parentOf(op.whiteout) === '' ? '' : parentOf(op.whiteout) + '/'}.wh.${baseOf(op.whiteout)}`)), '');
      } else {
        const prefix = dialect.xattrPrefix ?? 'trusted';
        writeFileSync(bytes(at(op.whiteout)), '');
        setx(at(op.whiteout), `${prefix}.overlay.whiteout`, 'y');
        setx(at(parentOf(op.whiteout)), `${prefix}.overlay.opaque`, 'x');
      }
    } else if ('fifo' in op) {
      ensureParent(op.fifo);
      later.run('mkfifo', '-m', (op.mode ?? 0o644).toString(8), '--', at(op.fifo));
    } else {
      ensureParent(op.dev);
      later.run('mknod', '-m', (op.mode ?? 0o600).toString(8), '--', at(op.dev), op.type, String(op.major), String(op.minor));
    }
  }
  later.flush();
  stampTimes(bytes(root), Buffer.alloc(0));
}

/** mtime = 1.6e9 + (hash of the path within the layer) seconds, children before parents. */
function stampTimes(abs: Buffer, rel: Buffer): void {
  const st = lstatSync(abs);
  if (st.isDirectory()) {
    for (const name of readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare)) {
      stampTimes(Buffer.concat([abs, Buffer.from('/'), name]), Buffer.concat([rel, Buffer.from('/'), name]));
    }
  }
  const h = createHash('sha256').update(rel).digest().readUInt32BE(0);
  const t = 1_600_000_000 + (h % 50_000_000);
  lutimesSync(abs, t, t);
}
