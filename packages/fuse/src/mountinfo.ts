/** /proc/self/mountinfo: which mounts exist (proc(5)). */
import { readFileSync } from 'node:fs';

export interface MountInfo {
  readonly id: number;
  readonly parentId: number;
  readonly major: number;
  readonly minor: number;
  /** Root of the mount within its filesystem. */
  readonly root: string;
  readonly mountpoint: string;
  readonly options: string;
  readonly fstype: string;
  readonly source: string;
  readonly superOptions: string;
}

/** Undoes the octal escapes (\040 space, \011 tab, \012 newline, \134 backslash). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (fields.length < 10 || sep < 0 || fields.length < sep + 3) continue;
    const [major, minor] = fields[2]!.split(':').map(Number);
    out.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      major: major ?? 0,
      minor: minor ?? 0,
      root: unescape(fields[3]!),
      mountpoint: unescape(fields[4]!),
      options: fields[5]!,
      fstype: fields[sep + 1]!,
      source: unescape(fields[sep + 2]!),
      superOptions: fields[sep + 3] ?? '',
    });
  }
  return out;
}

export function readMountinfo(): MountInfo[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** The top-most mount at exactly `mountpoint` (an absolute, canonical path), if any. */
export function findMount(mountpoint: string, mounts: MountInfo[] = readMountinfo()): MountInfo | undefined {
  let found: MountInfo | undefined;
  for (const m of mounts) if (m.mountpoint === mountpoint) found = m; // later lines are stacked on top
  return found;
}
