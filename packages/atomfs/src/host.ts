import { existsSync, readFileSync, readlinkSync } from 'node:fs';

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
