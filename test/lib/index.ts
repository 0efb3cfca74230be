/** Shared test infrastructure: fixtures (tree, images, mounts, users) and ground truth (snapshots). */
export * from './cleanup.js';
export * from './content.js';
export * from './debian-image.js';
export * from './exec.js';
export * from './kernel.js';
export * from './mksquashfs.js';
export * from './names.js';
export * from './snapshot.js';
export * from './tree.js';
export * from './users.js';
export * from './xattrs.js';
