#!/usr/bin/env node
// VerifiedSource read path (what FUSE reads go through) vs plain preads of the same file.
//   node packages/verity/bench/read-speed.mjs [MiB=128]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, writeSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileByteSource, formatVeritySync, openVerified } from '../dist/src/index.js';

const mib = Number(process.argv[2] ?? 128);
const dir = mkdtempSync(join(tmpdir(), 'atomfs-verity-readbench-'));
try {
  const img = join(dir, 'layer.img');
  const H = mib * 1024 * 1024;
  const fd = openSync(img, 'w');
  const chunk = randomBytes(1 << 20);
  for (let i = 0; i < mib; i++) writeSync(fd, chunk);
  closeSync(fd);
  const { rootHash } = formatVeritySync(img, { hashOffset: H });
  const patterns = {
    'sequential 128 KiB, unaligned (+1000)': (src) => {
      for (let p = 1000; p + 131072 <= src.size; p += 131072) src.read(p, 131072);
    },
    'sequential 8 KiB, unaligned (+100)': (src) => {
      for (let p = 100; p + 8192 <= src.size; p += 8192) src.read(p, 8192);
    },
    'random 4 KiB aligned (16384 reads)': (src) => {
      let x = 12345;
      for (let i = 0; i < 16384; i++) {
        x = (x * 1103515245 + 12345) >>> 0;
        src.read((x % (src.size / 4096)) * 4096, 4096);
      }
    },
  };
  for (const [name, fn] of Object.entries(patterns)) {
    for (const kind of ['plain pread', 'VerifiedSource']) {
      const file = new FileByteSource(img);
      const src = kind === 'plain pread' ? file : openVerified(file, { hashOffset: H, rootHash, label: 'bench' });
      const t = performance.now();
      fn(src);
      const ms = performance.now() - t;
      src.close();
      const bytes = name.startsWith('random') ? 16384 * 4096 : src.size;
      console.log(`${name.padEnd(40)} ${kind.padEnd(15)} ${(bytes / 1e6 / (ms / 1000)).toFixed(0).padStart(6)} MB/s`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
