/**
 * Render bench/results/latest.json (written by `pnpm bench`) as a Markdown table with the machine
 * it ran on and the issue targets (met / NOT met), and with --write put it into README.md between
 * the `<!-- bench:start -->` and `<!-- bench:end -->` markers.
 *
 *   node bench/dist/readme-table.js [--write] [--all] [RESULTS.json]
 *
 * --all keeps the per-workload server CPU rows (left out by default: they are in the JSON).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { ResultRow } from './index.js';

export const START = '<!-- bench:start -->';
export const END = '<!-- bench:end -->';

export class ReadmeTableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

interface Results {
  started: string;
  finished: string;
  machine: { cpus: number; cpuModel?: string; memGiB?: number; kernel: string; node: string; loadavgBefore?: number[]; loadavgAtEnd: number[] };
  runs: number;
  sections?: string[];
  sectionSeconds?: Record<string, number>;
  rows: ResultRow[];
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

function formatValue(r: ResultRow): string {
  const digits = r.unit === 's' ? (r.value < 10 ? 3 : 1) : r.unit === 'MiB' ? 0 : r.value < 100 ? 1 : 0;
  return `${r.value.toFixed(digits)} ${r.unit}`;
}

/** The Markdown block (without the markers). */
export function renderTable(res: Results, all = false): string {
  const m = res.machine;
  const la = (l: number[] | undefined): string => (l === undefined ? '?' : l.map((x) => x.toFixed(2)).join(' '));
  const minutes = (Date.parse(res.finished) - Date.parse(res.started)) / 60_000;
  const lines: string[] = [];
  lines.push(
    `Latest \`pnpm bench\` run: ${res.finished.slice(0, 10)}, RUNS=${res.runs} (medians; verification and RSS use min(RUNS, 3)), ` +
      `${minutes.toFixed(1)} min${res.sections && res.sections.length < 7 ? `, sections ${res.sections.join(', ')} only` : ''}.`,
  );
  lines.push('');
  lines.push(
    `Machine: ${m.cpus} CPUs${m.cpuModel ? ` (${m.cpuModel})` : ''}${m.memGiB ? `, ${m.memGiB} GiB RAM` : ''}, Linux ${m.kernel}, Node ${m.node}, ` +
      `load average ${la(m.loadavgBefore)} before / ${la(m.loadavgAtEnd)} after.`,
  );
  lines.push('');
  lines.push('Ratios compare our row with the named tool in the same run; above 1 means ours is better (faster, more IOPS, less memory).');
  lines.push('');
  lines.push('| workload | tool | median | ratio | target |');
  lines.push('|---|---|---:|---|---|');
  let last = '';
  for (const r of res.rows) {
    if (!all && r.workload.endsWith(': server CPU')) continue;
    const ratio = Object.entries(r.speedup ?? {})
      .map(([k, v]) => `${v.toFixed(2)}× ${k}`)
      .join(', ');
    const target = r.target === undefined ? '' : r.met ? r.target : `**${r.target}**`;
    lines.push(`| ${r.workload === last ? '' : cell(r.workload)} | ${cell(r.tool)} | ${formatValue(r)} | ${cell(ratio)} | ${cell(target)} |`);
    last = r.workload;
  }
  return lines.join('\n');
}

/** README text with the region between the markers replaced by `block`. */
export function replaceRegion(readme: string, block: string): string {
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < 0 || b < a) throw new ReadmeTableError(`README.md needs ${START} ... ${END} markers (in this order)`);
  return `${readme.slice(0, a + START.length)}\n${block}\n${readme.slice(b)}`;
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const args = process.argv.slice(2);
  const write = args.includes('--write');
  const all = args.includes('--all');
  const file = args.find((a) => !a.startsWith('--')) ?? new URL('../results/latest.json', import.meta.url).pathname;
  const res = JSON.parse(readFileSync(file, 'utf8')) as Results;
  if (!Array.isArray(res.rows) || res.machine === undefined) throw new ReadmeTableError(`${file} is not a pnpm bench result`);
  const block = renderTable(res, all);
  if (write) {
    const readme = new URL('../../README.md', import.meta.url).pathname;
    writeFileSync(readme, replaceRegion(readFileSync(readme, 'utf8'), block));
    process.stdout.write(`updated ${readme}\n`);
  } else {
    process.stdout.write(block + '\n');
  }
}
