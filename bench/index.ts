/**
 * `pnpm bench`: the issue benchmarks in one run — extraction/listing vs unsquashfs (issue 2) and
 * the FUSE mount vs squashfuse_ll and the kernel (issue 3) — printed as one table and written
 * to bench/results/latest.json. RUNS (default 5; extraction uses min(RUNS, 3)), ONLY=extract|fuse.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { benchExtract } from './extract.js';
import { benchFuse, printFuseSummary, type FuseBenchResult } from './fuse.js';
import { printRatioTable, type RatioRow, type Row } from './lib.js';

const runs = Number(process.env.RUNS ?? 5);
if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`RUNS must be a positive integer, got ${process.env.RUNS}`);
const only = process.env.ONLY;
if (only !== undefined && only !== 'extract' && only !== 'fuse') throw new RangeError(`ONLY must be extract or fuse, got ${only}`);

/** Extraction rows come in (unsquashfs, atomfs) pairs: give the atomfs row its speedup. */
function withExtractRatios(rows: Row[]): RatioRow[] {
  const out: RatioRow[] = [];
  for (let i = 0; i < rows.length; i += 2) {
    const ref = rows[i]!;
    const ours = rows[i + 1]!;
    out.push(ref, { ...ours, speedup: { [ref.tool.split(' ')[0]!]: ref.value / ours.value } });
  }
  return out;
}

const started = new Date().toISOString();
const extractRows = only === 'fuse' ? [] : withExtractRatios(benchExtract(Math.min(runs, 3)));
let fuse: FuseBenchResult | undefined;
if (only !== 'extract') fuse = benchFuse(runs);
const rows: RatioRow[] = [...extractRows, ...(fuse?.rows ?? [])];
printRatioTable(rows);
if (fuse) printFuseSummary(fuse);

const results = new URL('./results/', new URL('..', import.meta.url));
mkdirSync(results, { recursive: true });
const file = new URL('latest.json', results);
writeFileSync(
  file,
  JSON.stringify(
    {
      started,
      finished: new Date().toISOString(),
      machine: { cpus: cpus().length, kernel: release(), node: process.version, loadavgAtEnd: loadavg() },
      runs,
      rows,
      fuse: fuse && { ratios: fuse.ratios, bestReadWorkers: fuse.bestReadWorkers, loadavgBefore: fuse.loadavgBefore, loadavgAfter: fuse.loadavgAfter, raw: fuse.raw, rawServerCpu: fuse.rawServerCpu },
    },
    null,
    1,
  ) + '\n',
);
process.stdout.write(`results: ${file.pathname}\n`);
