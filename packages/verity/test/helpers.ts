import { execFileSync, spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

/** n deterministic pseudo-random bytes for `seed` (AES-CTR keystream: fast for tens of MiB). */
export function seededBytes(seed: string, n: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(n)), cipher.final()]);
}

export function requireTool(name: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`required tool "${name}" is not installed (install cryptsetup-bin / squashfs-tools)`);
}

export interface VeritysetupFormat {
  rootHash: string;
  salt: string;
  uuid: string;
  hashType: number;
  dataBlocks: number;
  output: string;
}

/** Runs `veritysetup format IMG IMG --hash-offset=H --data-blocks=N [extra]` and parses what it prints. */
export function veritysetupFormat(img: string, hashOffset: number, dataBlocks: number, extra: string[] = []): VeritysetupFormat {
  const output = execFileSync('veritysetup', ['format', img, img, `--hash-offset=${hashOffset}`, `--data-blocks=${dataBlocks}`, ...extra], {
    encoding: 'utf8',
  });
  const field = (name: string): string => {
    const m = new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(output);
    if (!m) throw new Error(`veritysetup output has no "${name}:" line:\n${output}`);
    return m[1]!;
  };
  return {
    rootHash: field('Root hash'),
    salt: field('Salt'),
    uuid: field('UUID'),
    hashType: Number(field('Hash type')),
    dataBlocks: Number(field('Data blocks')),
    output,
  };
}

/** `veritysetup verify IMG IMG ROOT --hash-offset=H`: true when it accepts the image. */
export function veritysetupVerify(img: string, hashOffset: number, rootHash: string): boolean {
  const r = spawnSync('veritysetup', ['verify', img, img, rootHash, `--hash-offset=${hashOffset}`], { encoding: 'utf8' });
  if (r.error) throw r.error;
  return r.status === 0;
}

/**
 * Writes `bytes` of seeded random data, in 1 MiB pieces: first-touching fresh memory is very slow
 * in this VM (~200 MB/s), so big one-piece buffers are avoided in the tests.
 */
export function writeDataFile(path: string, seed: string, bytes: number): void {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(1 << 20);
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < bytes; ) {
      const n = Math.min(zeros.length, bytes - done);
      writeSync(fd, cipher.update(zeros.subarray(0, n)));
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** Byte-for-byte file comparison in 1 MiB pieces. */
export function filesEqual(a: string, b: string): boolean {
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  try {
    if (fstatSync(fa).size !== fstatSync(fb).size) return false;
    const ba = Buffer.alloc(1 << 20);
    const bb = Buffer.alloc(1 << 20);
    for (let pos = 0; ; pos += ba.length) {
      const na = readSync(fa, ba, 0, ba.length, pos);
      const nb = readSync(fb, bb, 0, bb.length, pos);
      if (na !== nb) return false;
      if (na === 0) return true;
      if (!ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

/**
 * An in-memory source that hands out views, not copies (like @atomfs/squashfs's BufferSource):
 * no allocation per read, which keeps the tamper loops fast here, and checks that the verified
 * source copies what it keeps.
 */
export class ViewSource {
  constructor(private readonly buf: Buffer) {}
  get size(): number {
    return this.buf.length;
  }
  read(position: number, length: number): Buffer {
    if (position < 0 || length < 0 || position + length > this.buf.length) throw new RangeError(`read ${length}@${position} out of range`);
    return this.buf.subarray(position, position + length);
  }
}
