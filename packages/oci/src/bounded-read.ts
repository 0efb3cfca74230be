/**
 * Read a whole small file (a JSON document) without trusting it: a FIFO must not block us, a
 * device or huge file must not make us allocate without bound, and a file changing under us must
 * not yield a torn read. Callers supply how each failure is reported (layout vs blob errors).
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { OciError } from './errors.js';

export interface BoundedReadFailures {
  /** The file is missing, not a regular file, unreadable, or changed while read. */
  readonly fail: (problem: string) => never;
  /** The file is larger than the limit. */
  readonly tooLarge: (size: number) => never;
}

export const DEFAULT_MAX_JSON_BYTES = 4 * 1024 * 1024;

function errnoProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOTDIR') return 'a parent path component is not a directory';
  if (code === 'EISDIR') return 'is a directory, expected a file';
  return `cannot be read (${err instanceof Error ? err.message : String(err)})`;
}

export async function readBoundedFile(path: string, limit: number, on: BoundedReadFailures): Promise<Buffer> {
  let handle;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    on.fail(errnoProblem(err));
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) on.fail('is a directory, expected a file');
    if (!st.isFile()) on.fail('is not a regular file');
    if (st.size > limit) on.tooLarge(st.size);
    const buf = Buffer.alloc(st.size);
    let filled = 0;
    while (filled < buf.length) {
      const { bytesRead } = await handle.read(buf, filled, buf.length - filled, filled);
      if (bytesRead === 0) on.fail(`shrank while being read (${filled} of ${st.size} bytes)`);
      filled += bytesRead;
    }
    const probe = Buffer.alloc(1);
    const { bytesRead } = await handle.read(probe, 0, 1, filled);
    if (bytesRead !== 0) on.fail('grew while being read');
    return buf;
  } catch (err) {
    // Our own typed failures pass through; anything else (EIO, EISDIR on read) becomes one.
    if (err instanceof OciError) throw err;
    on.fail(errnoProblem(err));
  } finally {
    await handle.close();
  }
}
