import { DecompressError } from '../errors.js';
import { crc32 } from './crc32.js';
import { overCap } from './decompressor.js';

/**
 * Structure of one .xz stream (xz-file-format 1.1.0), walked WITHOUT decoding, to learn the exact
 * decoded size before a decoder that cannot be given an output limit runs.
 *
 * Why this is sound: xz blocks end in LZMA2 data, and LZMA2 is a series of chunks whose headers
 * state each chunk's uncompressed size (and, for LZMA chunks, compressed size). A conforming
 * decoder must produce exactly that many bytes per chunk and reject the stream otherwise; BCJ and
 * delta filters (before LZMA2) keep the size. So the sum of the chunk sizes is the stream's output,
 * computed in O(chunks) from headers covered by CRC32 (block header) or bounded by the input.
 * We also require what squashfs-tools' lzma_stream_buffer_decode call requires: one stream that
 * spans the whole block (no padding, no second stream), so no data hides after what we walked.
 */
export interface XzBlock {
  /** Filter IDs in chain order; the last is always LZMA2 (0x21), e.g. [0x04, 0x21] for x86 BCJ. */
  filters: number[];
  dictionarySize: number;
  /** Sizes from the block header, when present (mksquashfs writes both). */
  declaredCompressedSize: number | undefined;
  declaredUncompressedSize: number | undefined;
  /** From walking the LZMA2 chunks. */
  compressedSize: number;
  uncompressedSize: number;
}

export interface XzStream {
  checkType: number;
  blocks: XzBlock[];
  uncompressedSize: number;
}

const STREAM_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const FOOTER_MAGIC = [0x59, 0x5a];
const STREAM_HEADER_SIZE = 12;
const STREAM_FOOTER_SIZE = 12;
const FILTER_LZMA2 = 0x21;
/** Bytes of the check field per check type (xz spec 2.1.1.2). */
const CHECK_SIZES = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];
/** squashfs-tools decodes with a 32 MiB liblzma memory limit (MEMLIMIT in xz_wrapper.h): dictionaries past it fail there too. */
export const XZ_MAX_DICTIONARY = 32 << 20;

function fail(detail: string): never {
  throw new DecompressError('xz', detail);
}

/** Read a multibyte integer (7 bits per byte, little-endian, at most 9 bytes, minimal encoding). */
function readVli(src: Uint8Array, pos: number, end: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 9; i++) {
    if (pos >= end) fail('header ends inside a variable-length integer');
    const b = src[pos++]!;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) {
      if (i > 0 && b === 0) fail('variable-length integer is not minimally encoded');
      return [value, pos];
    }
    scale *= 128;
  }
  return fail('variable-length integer longer than 9 bytes');
}

/** LZMA2 dictionary size from its 1-byte filter property (xz spec 5.3.1). */
export function lzma2DictionarySize(prop: number): number {
  if (prop > 40) fail(`LZMA2 dictionary property ${prop} is invalid`);
  if (prop === 40) return 0xffff_ffff;
  return (2 | (prop & 1)) * 2 ** ((prop >> 1) + 11);
}

/**
 * Walk the LZMA2 chunks starting at `pos`; returns [compressed bytes incl. the end byte, decoded
 * bytes]. Throws as soon as the decoded total would pass `maxOutput`.
 */
function walkLzma2(src: Uint8Array, pos: number, end: number, maxOutput: number): [compressed: number, uncompressed: number] {
  const start = pos;
  let total = 0;
  for (;;) {
    if (pos >= end) fail('LZMA2 data ends without its end marker');
    const control = src[pos]!;
    if (control === 0x00) return [pos + 1 - start, total];
    let unpacked: number;
    let headerSize: number;
    let packed: number;
    if (control === 0x01 || control === 0x02) {
      // Uncompressed chunk: u16be size - 1, then the bytes.
      if (end - pos < 3) fail('LZMA2 chunk header truncated');
      unpacked = ((src[pos + 1]! << 8) | src[pos + 2]!) + 1;
      headerSize = 3;
      packed = unpacked;
    } else if (control >= 0x80) {
      // LZMA chunk: 5 size bits in the control byte + u16be = unpacked - 1; u16be packed - 1;
      // a properties byte follows when the control byte resets the state with new properties.
      headerSize = control >= 0xc0 ? 6 : 5;
      if (end - pos < headerSize) fail('LZMA2 chunk header truncated');
      unpacked = (control & 0x1f) * 65536 + ((src[pos + 1]! << 8) | src[pos + 2]!) + 1;
      packed = ((src[pos + 3]! << 8) | src[pos + 4]!) + 1;
    } else {
      return fail(`invalid LZMA2 control byte 0x${control.toString(16)}`);
    }
    total += unpacked;
    if (total > maxOutput) throw overCap('xz', maxOutput);
    pos += headerSize + packed;
    if (pos > end) fail('LZMA2 chunk runs past the end of the block');
  }
}

/** Parse the block at `pos` (its header byte is not 0); returns the block and the position after its check field. */
function readBlock(src: Uint8Array, pos: number, end: number, checkSize: number, budget: number): [XzBlock, number] {
  const start = pos;
  const headerSize = (src[pos]! + 1) * 4;
  if (headerSize > end - pos) fail('block header runs past the index');
  const crcPos = pos + headerSize - 4;
  if (crc32(src, pos, crcPos) !== ((src[crcPos]! | (src[crcPos + 1]! << 8) | (src[crcPos + 2]! << 16)) + src[crcPos + 3]! * 2 ** 24)) {
    fail('block header CRC32 mismatch');
  }
  const flags = src[pos + 1]!;
  if (flags & 0x3c) fail('reserved block flags set');
  let q = pos + 2;
  let declaredCompressedSize: number | undefined;
  let declaredUncompressedSize: number | undefined;
  if (flags & 0x40) [declaredCompressedSize, q] = readVli(src, q, crcPos);
  if (flags & 0x80) [declaredUncompressedSize, q] = readVli(src, q, crcPos);
  if (declaredCompressedSize === 0) fail('block declares a compressed size of 0');
  if (declaredUncompressedSize !== undefined && declaredUncompressedSize > budget) {
    throw overCap('xz', budget, declaredUncompressedSize);
  }
  const filterCount = (flags & 3) + 1;
  const filters: number[] = [];
  let dictionarySize = 0;
  for (let i = 0; i < filterCount; i++) {
    let id: number;
    let propsSize: number;
    [id, q] = readVli(src, q, crcPos);
    [propsSize, q] = readVli(src, q, crcPos);
    if (propsSize > crcPos - q) fail('filter properties run past the block header');
    const last = i === filterCount - 1;
    if ((id === FILTER_LZMA2) !== last) fail('LZMA2 must be the last filter, and only the last');
    if (last) {
      if (propsSize !== 1) fail('LZMA2 filter properties must be 1 byte');
      dictionarySize = lzma2DictionarySize(src[q]!);
    }
    filters.push(id);
    q += propsSize;
  }
  for (; q < crcPos; q++) if (src[q] !== 0) fail('block header padding is not zero');
  if (dictionarySize > XZ_MAX_DICTIONARY) fail(`LZMA2 dictionary of ${dictionarySize} bytes exceeds ${XZ_MAX_DICTIONARY}`);

  const dataStart = pos + headerSize;
  const [compressedSize, uncompressedSize] = walkLzma2(src, dataStart, end, budget);
  if (declaredCompressedSize !== undefined && declaredCompressedSize !== compressedSize) {
    fail(`block header says ${declaredCompressedSize} compressed bytes, LZMA2 data has ${compressedSize}`);
  }
  if (declaredUncompressedSize !== undefined && declaredUncompressedSize !== uncompressedSize) {
    fail(`block header says ${declaredUncompressedSize} uncompressed bytes, LZMA2 chunks hold ${uncompressedSize}`);
  }
  q = dataStart + compressedSize;
  while ((q - start) % 4 !== 0) {
    if (q >= end || src[q] !== 0) fail('block padding is missing or not zero');
    q++;
  }
  q += checkSize;
  if (q > end) fail('block check field runs past the index');
  return [{ filters, dictionarySize, declaredCompressedSize, declaredUncompressedSize, compressedSize, uncompressedSize }, q];
}

/** Walk a whole .xz stream that must span exactly `src`; throws DecompressError('xz', …). */
export function scanXzStream(src: Uint8Array, maxOutput: number): XzStream {
  if (src.length < STREAM_HEADER_SIZE + 8 + STREAM_FOOTER_SIZE) fail(`block of ${src.length} bytes is too short for an .xz stream`);
  for (let i = 0; i < 6; i++) if (src[i] !== STREAM_MAGIC[i]) fail('no .xz stream header magic');
  const flags0 = src[6]!;
  const flags1 = src[7]!;
  if (flags0 !== 0 || (flags1 & 0xf0) !== 0) fail('unsupported stream flags');
  const headerCrc = (src[8]! | (src[9]! << 8) | (src[10]! << 16)) + src[11]! * 2 ** 24;
  if (crc32(src, 6, 8) !== headerCrc) fail('stream header CRC32 mismatch');
  const checkType = flags1 & 0x0f;

  const f = src.length - STREAM_FOOTER_SIZE;
  if (src[f + 10] !== FOOTER_MAGIC[0] || src[f + 11] !== FOOTER_MAGIC[1]) fail('no .xz stream footer magic (or trailing data)');
  if (src[f + 8] !== flags0 || src[f + 9] !== flags1) fail('stream footer flags differ from the header');
  const backwardSize = ((src[f + 4]! | (src[f + 5]! << 8) | (src[f + 6]! << 16)) + src[f + 7]! * 2 ** 24 + 1) * 4;
  const indexStart = f - backwardSize;
  if (indexStart < STREAM_HEADER_SIZE) fail('index size in the stream footer is too large');
  if (src[indexStart] !== 0) fail('no index where the stream footer puts it');

  const blocks: XzBlock[] = [];
  let total = 0;
  let pos = STREAM_HEADER_SIZE;
  while (pos < indexStart) {
    if (src[pos] === 0) fail('index found before the position the stream footer gives');
    const [block, next] = readBlock(src, pos, indexStart, CHECK_SIZES[checkType]!, maxOutput - total);
    blocks.push(block);
    total += block.uncompressedSize;
    pos = next;
  }
  if (pos !== indexStart) fail('blocks overlap the index');
  return { checkType, blocks, uncompressedSize: total };
}
