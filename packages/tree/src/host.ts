/**
 * Creating on the host what node:fs cannot create directly, and setting an entry's owner, mode
 * and time, for extraction.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, lchownSync, lutimesSync, readFileSync, renameSync, statSync, utimesSync } from 'node:fs';
import { createServer } from 'node:net';
import { deviceNumbers, type NodeAttr, type NodeKind } from './attr.js';

/** Create a fifo or a device node at `target` (via the ASCII temporary name `tmp`); false when refused (devices need root). */
export function makeNode(kind: NodeKind, rdev: number, tmp: string, target: Buffer): boolean {
  let args: string[];
  if (kind === 'fifo') args = ['mkfifo', tmp];
  else if (kind === 'block' || kind === 'char') {
    const { major, minor } = deviceNumbers(rdev);
    args = ['mknod', tmp, kind === 'block' ? 'b' : 'c', String(major), String(minor)];
  } else return false;
  // Node has no mknod(2): the coreutils tools do it, under an ASCII name (argv strings are UTF-8).
  const r = spawnSync(args[0]!, args.slice(1), { stdio: 'ignore' });
  if (r.status !== 0) return false;
  renameSync(tmp, target);
  return true;
}

/** Create a unix socket file at `target` (via the ASCII temporary name `tmp`). */
export async function makeSocket(tmp: string, target: Buffer): Promise<void> {
  // bind(2) on a unix socket creates the socket file. Node unlinks it when the server closes,
  // so keep a second link to it made before closing.
  const keep = `${tmp}.keep`;
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(tmp, () => {
      linkSync(tmp, keep);
      server.close(() => resolve());
    });
  });
  renameSync(keep, target);
}

/** Owner (when `owners`), mode and mtime of an entry created by path (not symlinks' modes: Linux has none). */
export function finish(kind: NodeKind, a: NodeAttr, target: Buffer, owners: boolean): void {
  const isLink = kind === 'symlink';
  if (owners) {
    if (isLink) lchownSync(target, a.uid, a.gid);
    else chownSync(target, a.uid, a.gid);
  }
  // chmod after chown: chown clears setuid/setgid bits.
  if (!isLink) chmodSync(target, a.mode & 0o7777);
  const t = mtimeSeconds(a);
  if (isLink) lutimesSync(target, t, t);
  else utimesSync(target, t, t);
}

export function mtimeSeconds(a: NodeAttr): number {
  return a.mtimeNsec === 0 ? a.mtime : a.mtime + a.mtimeNsec / 1e9;
}

/** What a file created by this process gets without being told: its owner, group and umask. */
export interface Creator {
  owners: boolean;
  uid: number;
  /** -1 when unknown (the destination's set-group-ID bit hands its group down): always chown. */
  gid: number;
  umask: number;
}

export function creator(dest: string | Buffer, owners: boolean): Creator {
  const setgidDest = (statSync(dest).mode & 0o2000) !== 0;
  return { owners, uid: process.geteuid?.() ?? -1, gid: setgidDest ? -1 : (process.getegid?.() ?? -1), umask: readUmask() };
}

/** The process umask from /proc (process.umask() without an argument is deprecated); all bits when unknown, so every file gets its chmod. */
function readUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
    if (m) return parseInt(m[1]!, 8);
  } catch {
    // no /proc: fall through
  }
  return 0o7777;
}

/** getfattr/setfattr dump format escapes: backslash, newline and control bytes as \ooo. */
export function escapeName(name: Buffer): string {
  let s = '';
  for (const c of name) {
    if (c === 0x5c || c < 0x20 || c >= 0x7f) s += '\\' + c.toString(8).padStart(3, '0');
    else s += String.fromCharCode(c);
  }
  return s;
}
