import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/**
 * The one canonical path of a target: symlinks resolved, so a mount made through a link and an
 * umount through another name find the same record. A dead FUSE mount cannot be stat'ed
 * (ENOTCONN): then its parent is resolved and the name kept.
 */
export function resolveTarget(target: string): string {
  const abs = resolve(target);
  try {
    return realpathSync(abs);
  } catch {
    try {
      const parent = realpathSync(dirname(abs));
      const name = basename(abs);
      const st = lstatSync(join(parent, name));
      return st.isSymbolicLink() ? resolve(parent, readlinkSync(join(parent, name))) : join(parent, name);
    } catch {
      return abs;
    }
  }
}
