// The readers share one cache type: @atomfs/io's Lru.
export { Lru } from '@atomfs/io';
