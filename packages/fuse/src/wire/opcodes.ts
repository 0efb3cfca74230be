/** FUSE opcodes (fuse_kernel.h, protocol 7.45). */
export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  STATX: 52,
  COPY_FILE_RANGE_64: 53,
  CUSE_INIT: 4096,
} as const;

export type OpcodeName = keyof typeof Opcode;

const NAMES = new Map<number, OpcodeName>(
  (Object.entries(Opcode) as [OpcodeName, number][]).map(([name, code]) => [code, name]),
);

/** Name of an opcode for logs ("LOOKUP"), or "OP_<n>" when unknown. */
export function opcodeName(opcode: number): string {
  return NAMES.get(opcode) ?? `OP_${opcode}`;
}

/** Opcodes that would modify the filesystem: a read-only server answers them EROFS. */
export const MUTATING_OPCODES: ReadonlySet<number> = new Set([
  Opcode.SETATTR,
  Opcode.SYMLINK,
  Opcode.MKNOD,
  Opcode.MKDIR,
  Opcode.UNLINK,
  Opcode.RMDIR,
  Opcode.RENAME,
  Opcode.LINK,
  Opcode.WRITE,
  Opcode.SETXATTR,
  Opcode.REMOVEXATTR,
  Opcode.CREATE,
  Opcode.FALLOCATE,
  Opcode.RENAME2,
  Opcode.COPY_FILE_RANGE,
  Opcode.COPY_FILE_RANGE_64,
  Opcode.TMPFILE,
  Opcode.SETUPMAPPING,
  Opcode.REMOVEMAPPING,
]);

/** Opcodes the kernel sends without expecting any reply. */
export const NO_REPLY_OPCODES: ReadonlySet<number> = new Set([Opcode.FORGET, Opcode.BATCH_FORGET, Opcode.INTERRUPT]);
