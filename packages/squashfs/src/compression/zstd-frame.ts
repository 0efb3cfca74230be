import { DecompressError } from '../errors.js';

/** What a zstd frame's header and block headers tell without decoding (RFC 8878 §3.1.1). */
export interface ZstdFrame {
  /** Frame_Content_Size, when the header has it (mksquashfs' ZSTD_compressCCtx always writes it). */
  contentSize: number | undefined;
  windowSize: number | undefined;
  hasChecksum: boolean;
  blockCount: number;
  /**
   * Upper bound of the decoded size from the block headers alone: raw and RLE blocks state their
   * size, a compressed block decodes to at most 128 KiB (Block_Maximum_Size).
   */
  maxDecodedSize: number;
}

const FRAME_MAGIC = 0xfd2fb528;
const BLOCK_MAXIMUM_SIZE = 128 * 1024;

function fail(detail: string): never {
  throw new DecompressError('zstd', detail);
}

/**
 * Check that `src` is exactly one zstd frame (no skippable frames, no second frame, no trailing
 * bytes — squashfs-tools writes one frame per block) and read its sizes. Each block header is
 * visited once, so this costs O(blocks), a handful per squashfs block.
 */
export function scanZstdFrame(src: Uint8Array): ZstdFrame {
  const end = src.length;
  if (end < 6) fail(`block of ${end} bytes is too short for a zstd frame`);
  const magic = (src[0]! | (src[1]! << 8) | (src[2]! << 16) | (src[3]! << 24)) >>> 0;
  if (magic !== FRAME_MAGIC) fail(`no zstd frame magic (found 0x${magic.toString(16)})`);
  const descriptor = src[4]!;
  const fcsFlag = descriptor >> 6;
  const singleSegment = (descriptor & 0x20) !== 0;
  if (descriptor & 0x08) fail('reserved frame header bit set');
  const hasChecksum = (descriptor & 0x04) !== 0;
  const dictIdBytes = [0, 1, 2, 4][descriptor & 3]!;
  const fcsBytes = fcsFlag === 0 ? (singleSegment ? 1 : 0) : 1 << fcsFlag;
  let pos = 5;
  let windowSize: number | undefined;
  if (!singleSegment) {
    const wd = src[pos++]!;
    const base = 2 ** (10 + (wd >> 3));
    windowSize = base + (base / 8) * (wd & 7);
  }
  if (end - pos < dictIdBytes + fcsBytes) fail('frame header truncated');
  let dictId = 0;
  for (let i = 0; i < dictIdBytes; i++) dictId += src[pos + i]! * 2 ** (8 * i);
  if (dictId !== 0) fail(`frame needs dictionary ${dictId}; squashfs uses none`);
  pos += dictIdBytes;
  let contentSize: number | undefined;
  if (fcsBytes > 0) {
    contentSize = 0;
    for (let i = 0; i < fcsBytes; i++) contentSize += src[pos + i]! * 2 ** (8 * i);
    if (fcsBytes === 2) contentSize += 256;
    pos += fcsBytes;
  }
  if (singleSegment) windowSize = contentSize;

  let blockCount = 0;
  let maxDecodedSize = 0;
  for (;;) {
    if (end - pos < 3) fail('frame ends without its last block');
    const header = src[pos]! | (src[pos + 1]! << 8) | (src[pos + 2]! << 16);
    pos += 3;
    const last = (header & 1) !== 0;
    const type = (header >> 1) & 3;
    const size = header >>> 3;
    blockCount++;
    if (type === 0) {
      pos += size;
      maxDecodedSize += size;
    } else if (type === 1) {
      pos += 1;
      maxDecodedSize += size;
    } else if (type === 2) {
      if (size > BLOCK_MAXIMUM_SIZE) fail(`compressed block of ${size} bytes exceeds the 128 KiB block maximum`);
      pos += size;
      maxDecodedSize += BLOCK_MAXIMUM_SIZE;
    } else {
      fail('reserved block type');
    }
    if (pos > end) fail('block runs past the end of the frame');
    if (last) break;
  }
  if (hasChecksum) pos += 4;
  if (pos !== end) fail(pos > end ? 'frame checksum truncated' : `${end - pos} bytes after the end of the frame`);
  return { contentSize, windowSize, hasChecksum, blockCount, maxDecodedSize };
}
