/** Opening /dev/fuse, with errors that say why it failed and what to do about it. */
import { closeSync, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { devMajor, devMinor } from './wire/attr.js';
import { FuseDeviceError } from './errors.js';

export const DEFAULT_DEVICE = '/dev/fuse';
const FUSE_MAJOR = 10;
const FUSE_MINOR = 229;

/** True when this process runs in a user namespace other than the initial one. */
export function inUserNamespace(): boolean {
  try {
    // The initial namespace maps the whole id range onto itself.
    return !/^\s*0\s+0\s+4294967295\s*$/.test(readFileSync('/proc/self/uid_map', 'utf8'));
  } catch {
    return false;
  }
}

function fixHint(): string {
  const uid = process.getuid?.() ?? -1;
  if (uid === 0 && !inUserNamespace()) return 'check that /dev/fuse is the FUSE character device (10,229)';
  return (
    'as root, run `chmod 0666 /dev/fuse` (most distributions ship it that way); ' +
    'a non-root user then mounts from inside a user namespace, e.g. `unshare -Umr <command>`'
  );
}

/** Opens the FUSE device read-write; throws FuseDeviceError with a remedy on failure. */
export function openFuseDevice(path: string = DEFAULT_DEVICE): number {
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const uid = process.getuid?.() ?? -1;
    if (code === 'ENOENT') {
      throw new FuseDeviceError(
        path,
        code,
        `${path} does not exist: load the fuse kernel module (\`modprobe fuse\`) or, in a container, ` +
          `pass the device in (e.g. \`docker run --device /dev/fuse\`)`,
      );
    }
    if (code === 'EACCES' || code === 'EPERM') {
      let modeInfo = '';
      try {
        const st = statSync(path);
        modeInfo = ` (mode 0${(st.mode & 0o777).toString(8)}, owner uid ${st.uid})`;
      } catch {
        // The stat is only for the message.
      }
      throw new FuseDeviceError(
        path,
        code,
        `cannot open ${path}: permission denied for uid ${uid}${inUserNamespace() ? ' in a user namespace' : ''}${modeInfo}; ${fixHint()}`,
      );
    }
    if (code === 'ENXIO' || code === 'ENODEV') {
      throw new FuseDeviceError(path, code, `${path} exists but no FUSE driver answers it (${code}): load the fuse module (\`modprobe fuse\`)`);
    }
    throw new FuseDeviceError(path, code, `cannot open ${path}: ${(err as Error).message}`);
  }
  const st = fstatSync(fd);
  const rdev = st.rdev;
  // glibc's dev_t and the kernel's encoding agree for numbers this small.
  const major = devMajor(rdev);
  const minor = devMinor(rdev);
  if (!st.isCharacterDevice() || major !== FUSE_MAJOR || minor !== FUSE_MINOR) {
    closeSync(fd);
    throw new FuseDeviceError(path, undefined, `${path} is not the FUSE device (expected character device 10,229, found ${st.isCharacterDevice() ? `char ${major},${minor}` : 'no character device'})`);
  }
  return fd;
}
