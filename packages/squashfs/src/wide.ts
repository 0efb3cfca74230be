/**
 * The seed of a numeric field that can outgrow 2^31 (an inode reference, a position or size in
 * the image). V8 keeps a field that has only held small integers in a compact form; the first
 * larger number changes every object of that shape and discards the compiled code that relied on
 * it, which a fresh FUSE server met mid-walk (inode references pass 2^31 once the inode table
 * passes 32 KiB). A field given this value first holds doubles from the start.
 */
export const WIDE = 0.5;
