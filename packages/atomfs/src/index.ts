export { main, HELP } from './cli.js';
export { mount, umount, listMounts, type MountRequest, type AtomfsMount } from './api.js';
export { CommandError, InterruptedError, UsageError } from './errors.js';
export { UntrustedStateError } from './metadir.js';
