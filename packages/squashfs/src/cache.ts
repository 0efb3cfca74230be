// The readers share one cache type: @atomfs/io's Lru (a byte budget here).
export { Lru as ByteLru } from '@atomfs/io';
