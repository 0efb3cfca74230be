/**
 * Cleanup registry: every mount, loop device, temp dir, user and child process a test creates is
 * registered here right after it exists, and torn down in reverse order at test end (`t.after`)
 * and — if the test process dies early — from the process 'exit' / SIGINT / SIGTERM handlers.
 * Actions are synchronous on purpose: an 'exit' handler cannot await.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runSync, sleepSync } from './exec.js';

export type CleanupAction = () => void;

export class CleanupFailedError extends Error {
  constructor(readonly failures: readonly string[]) {
    super(`cleanup failed:\n  ${failures.join('\n  ')}`);
    this.name = new.target.name;
  }
}

interface Entry {
  label: string;
  fn: CleanupAction;
  done: boolean;
}

const liveStacks = new Set<CleanupStack>();

export class CleanupStack {
  private readonly entries: Entry[] = [];

  constructor() {
    liveStacks.add(this);
    installProcessHandlers();
  }

  /** Register an action; the returned function runs it now (once) and unregisters it. */
  add(label: string, fn: CleanupAction): () => void {
    const e: Entry = { label, fn, done: false };
    this.entries.push(e);
    liveStacks.add(this); // a stack that already ran can be reused
    return () => {
      if (e.done) return;
      e.done = true;
      e.fn();
    };
  }

  /** Run every pending action in reverse order; all run even if some fail, then failures throw. */
  run(): void {
    const failures: string[] = [];
    while (this.entries.length > 0) {
      const e = this.entries.pop()!;
      if (e.done) continue;
      e.done = true;
      try {
        e.fn();
      } catch (err) {
        failures.push(`${e.label}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    liveStacks.delete(this);
    if (failures.length > 0) throw new CleanupFailedError(failures);
  }
}

/** Anything with node:test's `after` (TestContext, or the suite-level `after` wrapped in an object). */
export interface AfterHook {
  after(fn: () => void | Promise<void>): void;
}

/** A stack that runs when the test (or suite) `t` ends, pass or fail. */
export function useCleanup(t: AfterHook): CleanupStack {
  const stack = new CleanupStack();
  t.after(() => stack.run());
  return stack;
}

let handlersInstalled = false;
function runAllAtExit(): void {
  for (const s of [...liveStacks].reverse()) {
    try {
      s.run();
    } catch (err) {
      process.stderr.write(`atomfs test cleanup at exit: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
}
function installProcessHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', runAllAtExit);
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(sig, () => {
      runAllAtExit();
      process.exit(code);
    });
  }
}

/** Process-wide stack for things that live for the whole test file (image cache, shared users). */
export const processCleanup = new CleanupStack();

// ---- leftover tracking -------------------------------------------------------------------------

const ourMounts = new Set<string>();
const ourLoops = new Set<string>();
const ourBackingFiles = new Set<string>();
const ourTempDirs = new Map<string, CleanupStack>();

/** Prefix of every temp dir this library creates (so a global leftover scan can find them). */
export const TEMP_PREFIX = 'atomfs-';

export function trackMount(mountpoint: string): void {
  ourMounts.add(resolve(mountpoint));
}
export function trackLoop(device: string, backingFile: string): void {
  ourLoops.add(device);
  ourBackingFiles.add(resolve(backingFile));
}
/** Register a file that may be attached to a loop device (checked by assertNoLeftovers). */
export function trackBackingFile(path: string): void {
  ourBackingFiles.add(resolve(path));
}

/** Decode the octal escapes (\040 for space, ...) the kernel uses in /proc/self/mountinfo. */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export interface MountInfo {
  mountpoint: string;
  fstype: string;
  source: string;
}

export function readMountinfo(): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0 || f.length < sep + 3) continue;
    out.push({ mountpoint: unescapeMountinfo(f[4]!), fstype: f[sep + 1]!, source: unescapeMountinfo(f[sep + 2]!) });
  }
  return out;
}

export function isMounted(path: string): boolean {
  const p = resolve(path);
  return readMountinfo().some((m) => m.mountpoint === p);
}

function mountsUnder(dir: string): string[] {
  const d = resolve(dir);
  return readMountinfo()
    .map((m) => m.mountpoint)
    .filter((mp) => mp === d || mp.startsWith(d + '/'))
    .sort((a, b) => b.length - a.length);
}

/**
 * Unmount `mountpoint`, retrying while it is busy (a test may still be closing files), then lazily
 * detach as a last resort so the suite does not wedge. Throws if only the lazy detach worked, so
 * the test still reports that something held the mount open.
 */
export function unmountSync(mountpoint: string): void {
  let lastErr = '';
  for (let i = 0; i < 20; i++) {
    if (!isMounted(mountpoint)) return;
    const r = runSync(['umount', mountpoint], { allowFail: true, timeoutMs: 30_000 });
    if (r.status === 0) return;
    lastErr = r.stderr.toString('utf8').trim();
    sleepSync(100);
  }
  if (!isMounted(mountpoint)) return;
  runSync(['umount', '-l', mountpoint], { allowFail: true, timeoutMs: 30_000 });
  throw new Error(`umount ${mountpoint} stayed busy (${lastErr}); detached lazily`);
}

/**
 * rm -rf that never deletes through a mount: anything still mounted below `dir` is unmounted
 * first (and reported as an error, because whoever mounted it should have unmounted it).
 */
export function removeTreeSync(dir: string): void {
  const stale = mountsUnder(dir);
  const problems: string[] = [];
  for (const mp of stale) {
    try {
      unmountSync(mp);
    } catch (e) {
      problems.push(e instanceof Error ? e.message : String(e));
    }
  }
  if (mountsUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true });
  else problems.push(`not removing ${dir}: still has mounts ${mountsUnder(dir).join(', ')}`);
  if (!existsSync(dir)) ourTempDirs.delete(resolve(dir));
  if (stale.length > 0) problems.unshift(`mounts left under ${dir}: ${stale.join(', ')}`);
  if (problems.length > 0) throw new Error(problems.join('; '));
}

/** mkdtemp under os.tmpdir() named atomfs-<prefix>-XXXXXX, removed by `stack`. */
export function makeTempDir(prefix: string, stack: CleanupStack): string {
  const dir = mkdtempSync(join(tmpdir(), `${TEMP_PREFIX}${prefix}-`));
  ourTempDirs.set(resolve(dir), stack);
  stack.add(`remove ${dir}`, () => removeTreeSync(dir));
  return dir;
}

interface LoopEntry {
  name: string;
  backFile: string;
}

export function listLoopDevices(): LoopEntry[] {
  const r = runSync(['losetup', '--list', '--json', '--output', 'NAME,BACK-FILE'], { allowFail: true });
  if (r.status !== 0) throw new Error(`losetup --list failed: ${r.stderr.toString('utf8').trim()}`);
  const text = r.stdout.toString('utf8').trim();
  if (!text) return [];
  const parsed = JSON.parse(text) as { loopdevices?: Array<{ name?: string; 'back-file'?: string | null }> };
  return (parsed.loopdevices ?? []).map((l) => ({
    name: l.name ?? '',
    // losetup appends " (deleted)" when the backing file was unlinked while attached.
    backFile: (l['back-file'] ?? '').replace(/ \(deleted\)$/, ''),
  }));
}

export class LeftoversError extends Error {
  constructor(readonly leftovers: readonly string[]) {
    super(`leftovers:\n  ${leftovers.join('\n  ')}`);
    this.name = new.target.name;
  }
}

/**
 * Throws LeftoversError listing mounts, loop devices and temp dirs this process created and did
 * not remove. With `all: true` it also reports every mount and loop device under os.tmpdir()
 * whose name starts with "atomfs-" — only meaningful when no other test file runs concurrently.
 */
export function assertNoLeftovers(opts: { all?: boolean } = {}): void {
  const found: string[] = [];
  const tmp = resolve(tmpdir());
  for (const m of readMountinfo()) {
    const ours = ourMounts.has(m.mountpoint);
    const global = opts.all && m.mountpoint.startsWith(`${tmp}/${TEMP_PREFIX}`);
    if (ours || global) found.push(`mount ${m.mountpoint} (${m.fstype} from ${m.source})`);
  }
  for (const l of listLoopDevices()) {
    // By backing file only: device names are recycled, so once we detached /dev/loopN another
    // process (a concurrently running test file) may attach its own image to the same name.
    const ours = ourBackingFiles.has(l.backFile);
    const global = opts.all && l.backFile.startsWith(`${tmp}/${TEMP_PREFIX}`);
    if (ours || global) found.push(`loop device ${l.name} on ${l.backFile}`);
  }
  // A temp dir whose stack is still live is in use, not left over.
  for (const [d, stack] of ourTempDirs) if (!liveStacks.has(stack) && existsSync(d)) found.push(`temp dir ${d}`);
  if (found.length > 0) throw new LeftoversError(found);
}

/**
 * Run `body` with a fresh stack that is always run afterwards. If both the body and the cleanup
 * fail, the thrown error carries both messages (the body's error stays the `errors[0]`).
 */
export async function scoped<T>(body: (stack: CleanupStack) => Promise<T>): Promise<T> {
  const stack = new CleanupStack();
  let result: T;
  try {
    result = await body(stack);
  } catch (err) {
    try {
      stack.run();
    } catch (cleanupErr) {
      const m = (e: unknown): string => (e instanceof Error ? e.message : String(e));
      throw new AggregateError([err, cleanupErr], `${m(err)}\n(and then ${m(cleanupErr)})`);
    }
    throw err;
  }
  stack.run();
  return result;
}
