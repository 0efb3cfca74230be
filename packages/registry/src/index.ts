/** @atomfs/registry — OCI images straight from a registry, read lazily through a shared blob cache. */
export * from './errors.js';
export { DOCKER_TRANSPORT, formatRemoteRef, isRemoteRef, parseRemoteRef, type RemoteRef } from './reference.js';
export { RegistryClient, defaultRetryPolicy, isLoopbackRegistry, worstCaseMs, type RemoteRepository, type RetryPolicy } from './client.js';
export { findCredentials, defaultAuthFiles, type Credentials } from './auth.js';
export { CHUNK_BYTES, CachedBlob, blobDataPath, cacheMaxBytes, defaultCacheDir, openCacheDir, trimCache } from './cache.js';
export { RemoteBlobSource, type RemoteBlob, type RemoteSourceOptions, type RemoteSourceStats } from './remote-source.js';
export { resolveRemoteImage, type RemoteImage, type RemoteLayer, type RemoteResolveOptions } from './resolve.js';
export { pullBlobs, trimFor, type PullOptions, type PullResult } from './pull.js';
export { closeIdleConnections } from './http.js';
