import { CommandError } from '../errors.js';
import { run } from '../undo.js';
import type { BackendMount, UpperDirs } from './backend.js';

/** Overlay options of Go atomfs (molecule.OverlayMountOptions). */
export const OVERLAY_OPTIONS = 'index=off,xino=on,userxattr';

export function mustRun(argv: string[], what: string): void {
  const r = run(argv);
  if (!r.ok) throw new CommandError(`${what}: ${r.err || `${argv[0]} failed`}`);
}

export function flagOptions(m: Pick<BackendMount, 'nosuid' | 'nodev'>): string[] {
  return [...(m.nosuid ? ['nosuid'] : []), ...(m.nodev ? ['nodev'] : [])];
}

/**
 * A path as an overlayfs option value: overlayfs takes a backslash as an escape (metadir names
 * hold "\x2d") and ":" as the lowerdir separator; a comma would end the option.
 */
function overlayPath(p: string): string {
  if (p.includes(',')) throw new CommandError(`overlayfs cannot take a path with a comma: ${p}`);
  return p.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
}

export function mountOverlay(o: Pick<BackendMount, 'target' | 'nosuid' | 'nodev'>, lowers: string[], upper: UpperDirs | undefined): void {
  const flags = flagOptions(o).map((f) => `,${f}`).join('');
  let opts: string;
  if (upper !== undefined) {
    // Like Go atomfs: the target itself is the top lower dir, so what it held shows through.
    const lower = [o.target, ...lowers].map(overlayPath).join(':');
    opts = `lowerdir=${lower},upperdir=${overlayPath(upper.upper)},workdir=${overlayPath(upper.work)},${OVERLAY_OPTIONS}${flags}`;
  } else {
    opts = `lowerdir=${lowers.map(overlayPath).join(':')},${OVERLAY_OPTIONS}${flags}`;
  }
  if (opts.length > 4096) throw new CommandError('too many lower dirs; must have fewer than 4096 chars');
  mustRun(['mount', '-t', 'overlay', 'overlay', '-o', opts, o.target], `mounting the overlay at ${o.target}`);
}
