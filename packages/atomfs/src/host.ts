import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * Host root = euid 0 with the identity uid map (Go atomfs AmHostRoot): uid 0 inside a user
 * namespace cannot set up loop devices, so it takes the FUSE path.
 */
export function isHostRoot(): boolean {
  if (process.geteuid?.() !== 0) return false;
  try {
    const lines = readFileSync('/proc/self/uid_map', 'utf8').trim().split('\n');
    return lines.length === 1 && lines[0]!.trim().split(/\s+/).join(' ') === '0 0 4294967295';
  } catch {
    return false;
  }
}

/** The mount namespace id ("4026531840" from "mnt:[4026531840]"), as Go atomfs names metadirs. */
export function mountNamespaceId(): string {
  const link = readlinkSync('/proc/self/ns/mnt');
  return link.slice(5, -1);
}

/**
 * Whether the kernel can run dm-verity: device-mapper present and veritysetup installed.
 * This project's machines have no device-mapper, so the FUSE path verifies in userspace instead.
 */
export function kernelDmVerityAvailable(): { ok: boolean; why: string } {
  if (!existsSync('/dev/mapper/control')) return { ok: false, why: 'no device-mapper (/dev/mapper/control missing)' };
  const misc = existsSync('/proc/misc') ? readFileSync('/proc/misc', 'utf8') : '';
  if (!/device-mapper/.test(misc)) return { ok: false, why: 'device-mapper is not registered in /proc/misc' };
  const targets = existsSync('/sys/module/dm_verity') || existsSync('/proc/modules') && /dm_verity/.test(readFileSync('/proc/modules', 'utf8'));
  if (!targets) return { ok: false, why: 'the dm-verity target is not loaded (modprobe dm-verity)' };
  return { ok: true, why: '' };
}

/** The uid this process's euid stands for in the parent user namespace (itself outside one). */
export function hostUid(): number {
  const euid = process.geteuid?.() ?? 0;
  try {
    for (const line of readFileSync('/proc/self/uid_map', 'utf8').trim().split('\n')) {
      const [inside, outside, count] = line.trim().split(/\s+/).map(Number) as [number, number, number];
      if (euid >= inside && euid < inside + count) return outside + (euid - inside);
    }
  } catch {
    // No /proc: the euid is all we know.
  }
  return euid;
}

/** The uid that files of unmapped owners show in a user namespace (usually 65534). */
export function overflowUid(): number {
  try {
    return Number(readFileSync('/proc/sys/kernel/overflowuid', 'utf8').trim());
  } catch {
    return 65534;
  }
}

/**
 * Whether this process is alone in a mount namespace of its own (as under `unshare -Umr --
 * atomfs mount ...`): a mount made there is seen by no other process, and by nobody once this
 * one exits. Our parent sharing it (a shell in the namespace) or any other process doing so
 * (one we may look at) means someone can use the mount. The server we started is not counted.
 */
export function namespaceHasNoOtherProcess(): boolean {
  const mine = readlinkSync('/proc/self/ns/mnt');
  try {
    if (readlinkSync(`/proc/${process.ppid}/ns/mnt`) === mine) return false;
  } catch {
    // A parent outside our user namespace (unshare's caller) cannot be looked at: not in ours.
  }
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${p}/ns/mnt`) !== mine) continue;
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes('__serve')) continue;
      return false;
    } catch {
      // exited, or not ours to look at
    }
  }
  return true;
}
