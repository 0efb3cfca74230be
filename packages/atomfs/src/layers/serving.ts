import type { SquashfsOptions } from '@atomfs/squashfs';

/**
 * How a FUSE server's threads open images. Every READ reply is written before the next read, so
 * decoded blocks may be recycled. The kernel's page cache keeps file data (replies are
 * keep-cache), so the decoded-block cache mostly serves fragment blocks shared by many small
 * files and reads that end inside a block; every thread has its own, so it is kept small to
 * bound the server's RSS (8 MiB = 64 blocks of 128 KiB).
 */
export const SERVING = { reuseBlockBuffers: true, dataCacheBytes: 8 << 20 } as const satisfies SquashfsOptions;
