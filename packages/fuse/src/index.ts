export { Errno, type ErrnoName, errnoName, FuseErrno } from './errno.js';
export { FileSystemLoadError, FuseDeviceError, FuseError, FuseProtocolError, MountCommandError, MountpointError } from './errors.js';
export {
  type Attr,
  type CreateFileSystem,
  type DirEntry,
  type Entry,
  type FileSystem,
  type FileSystemModule,
  type OpendirResult,
  type OpenResult,
  ROOT_ID,
  type Statfs,
} from './filesystem.js';
export { DEFAULT_DEVICE, inUserNamespace, openFuseDevice } from './device.js';
export { checkMountpoint, cleanupDeadMount, isDeadMount, mountArgv, setReadAhead, unmountFuse } from './mount.js';
export { findMount, type MountInfo, parseMountinfo, readMountinfo } from './mountinfo.js';
export { type CloseInfo, DEFAULT_READ_WORKERS, FuseServer, type FuseServerOptions, type FuseTimeouts } from './server.js';
export { DEFAULT_SESSION_CONFIG, type NegotiatedInit, type ReaddirplusMode, Session, type SessionConfig } from './session.js';
export type { StatsSnapshot } from './stats.js';
export { devMajor, devMinor, makeDev } from './wire/attr.js';
export { DirentType, direntTypeOf } from './wire/dirent.js';
export { InitFlag } from './wire/init.js';
export { OpenFlag } from './wire/open.js';
export { Opcode, opcodeName } from './wire/opcodes.js';
