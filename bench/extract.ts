import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DATA_DIR, printTable, standardImage, timeCommands, type Row } from './lib.js';

/**
 * Issue 2 benchmark: extraction of the 256 MiB zstd image and a walk of its 20,000-entry tree,
 * ours next to unsquashfs in the same run (cold caches, taking turns, median of RUNS).
 */
export function benchExtract(runs = 3): Row[] {
  const { image } = standardImage();
  const atomfs = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/atomfs');
  const out = join(DATA_DIR, 'extract-out');
  const clean = () => rmSync(out, { recursive: true, force: true });
  const [unsq, ours] = timeCommands([['unsquashfs', '-q', '-n', '-d', out, image], [atomfs, 'sqfs', 'extract', image, out]], runs, clean);
  const [unsqLs, oursLs] = timeCommands([['unsquashfs', '-lls', image], [atomfs, 'sqfs', 'ls', '-l', image]], runs);
  const rows: Row[] = [
    { workload: 'extract 256 MiB zstd', tool: 'unsquashfs', value: unsq!, unit: 's' },
    { workload: 'extract 256 MiB zstd', tool: 'atomfs sqfs extract', value: ours!, unit: 's' },
    { workload: 'list 20k entries', tool: 'unsquashfs -lls', value: unsqLs!, unit: 's' },
    { workload: 'list 20k entries', tool: 'atomfs sqfs ls -l', value: oursLs!, unit: 's' },
  ];
  clean();
  return rows;
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const rows = benchExtract(Number(process.env.RUNS ?? 3));
  printTable(rows);
  for (let i = 0; i < rows.length; i += 2) {
    process.stdout.write(`${rows[i]!.workload}: atomfs/unsquashfs time ratio ${(rows[i + 1]!.value / rows[i]!.value).toFixed(2)}\n`);
  }
}
