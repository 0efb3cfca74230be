/**
 * Deterministic file content. Every byte comes from a seeded PRNG, so a failing comparison can be
 * reproduced byte for byte. The kinds exercise different squashfs block encodings: random data is
 * stored as uncompressed blocks (compression does not help), text compresses, zeros become sparse
 * blocks (squashfs stores an all-zero block as size 0 even when the source has no hole), and
 * mixed data interleaves all three inside one block.
 */

/** sfc32: small, fast, good enough for test data; state from a 32-bit seed via splitmix32. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  fill(buf: Uint8Array): void {
    const n4 = buf.length & ~3;
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    for (let i = 0; i < n4; i += 4) view.setUint32(i, this.u32(), true);
    for (let i = n4; i < buf.length; i++) buf[i] = this.u32() & 0xff;
  }
}

export type ContentKind = 'random' | 'text' | 'zeros' | 'mixed';

const WORDS = (
  'squashfs overlay layer inode block fragment metadata directory xattr symlink device fifo socket ' +
  'compressor gzip xz zstd lz4 lzo lzma verity hash tree superblock table index entry offset ' +
  'atomfs mount fuse kernel loop read write page cache the a of and to in is that for it'
).split(' ');

function fillText(rng: Prng, buf: Buffer, from: number, to: number): void {
  let i = from;
  let col = 0;
  while (i < to) {
    const w = WORDS[rng.below(WORDS.length)]!;
    const piece = col > 60 ? '\n' : rng.below(40) === 0 ? `${w} ${rng.below(100000)} ` : w + ' ';
    col = piece === '\n' ? 0 : col + piece.length;
    i += buf.write(piece, i, Math.min(piece.length, to - i), 'latin1');
  }
}

/** `size` bytes of content `kind` from seed `seed`. */
export function makeContent(kind: ContentKind, size: number, seed: number): Buffer {
  const rng = new Prng(seed);
  const buf = Buffer.alloc(size);
  switch (kind) {
    case 'zeros':
      break;
    case 'random':
      rng.fill(buf);
      break;
    case 'text':
      fillText(rng, buf, 0, size);
      break;
    case 'mixed': {
      // Runs of 1..48 KiB, each random, text or zeros: blocks that partly compress.
      let i = 0;
      while (i < size) {
        const run = Math.min(size - i, 1 + rng.below(48 * 1024));
        const k = rng.below(3);
        if (k === 0) rng.fill(buf.subarray(i, i + run));
        else if (k === 1) fillText(rng, buf, i, i + run);
        i += run;
      }
      break;
    }
  }
  return buf;
}
