/** Builds a FileSystem from a FileSystemModule description (in any thread). */
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FileSystemLoadError } from './errors.js';
import type { CreateFileSystem, FileSystem, FileSystemModule } from './filesystem.js';
import type { WorkerMessage } from './worker-protocol.js';

/** The module reference as an import()-able URL; relative paths are refused (whose cwd?). */
export function moduleUrl(module: string): string {
  if (module.startsWith('file:') || module.startsWith('data:')) return module;
  if (!isAbsolute(module)) throw new FileSystemLoadError(`FileSystem module must be an absolute path or file: URL, got ${JSON.stringify(module)}`);
  return pathToFileURL(module).href;
}

export async function loadFileSystem(spec: FileSystemModule): Promise<FileSystem> {
  let mod: { createFileSystem?: unknown };
  try {
    mod = (await import(moduleUrl(spec.module))) as { createFileSystem?: unknown };
  } catch (err) {
    throw new FileSystemLoadError(`cannot load FileSystem module ${spec.module}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof mod.createFileSystem !== 'function') {
    throw new FileSystemLoadError(`FileSystem module ${spec.module} does not export a function createFileSystem(options)`);
  }
  let fs: FileSystem;
  try {
    fs = await (mod.createFileSystem as CreateFileSystem)(spec.options);
  } catch (err) {
    throw new FileSystemLoadError(`createFileSystem() of ${spec.module} failed: ${(err as Error).message}`, { cause: err, filesystemMessage: (err as Error).message });
  }
  if (!fs || typeof fs.lookup !== 'function' || typeof fs.read !== 'function' || typeof fs.readdir !== 'function' || typeof fs.getattr !== 'function') {
    throw new FileSystemLoadError(`createFileSystem() of ${spec.module} did not return a FileSystem (lookup/getattr/read/readdir)`);
  }
  return fs;
}

/** A worker's report that loadFileSystem() failed, keeping the FileSystem's own message apart. */
export function loadError(err: unknown): WorkerMessage {
  const message = err instanceof Error ? err.message : String(err);
  const own = err instanceof FileSystemLoadError ? err.filesystemMessage : undefined;
  return own === undefined ? { type: 'load-error', message } : { type: 'load-error', message, filesystemMessage: own };
}
