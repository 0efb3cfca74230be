export { toAsync, type AsyncByteSource, type ByteSource, type DualByteSource } from './byte-source.js';
export { BufferSource } from './buffer-source.js';
export { FileSource, type FileSourceOptions } from './file-source.js';
export { ByteRangeError, inRange, SourceTruncatedError } from './errors.js';
export { Lru } from './lru.js';
