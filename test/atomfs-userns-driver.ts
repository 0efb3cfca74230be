/**
 * Runs INSIDE `runuser -u USER -- unshare -Umr` (a mount namespace of its own, where the FUSE
 * mount lives and dies): executes the steps of a plan file (atomfs commands, snapshots, file
 * checks) in order, never stopping early, and prints the results as one JSON line. The test
 * outside asserts on them. Usage: node atomfs-userns-driver.js PLAN.json
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseDump, run, snapshotDir, type EntrySnap } from './lib/index.js';

export type Step =
  | { atomfs: string[]; env?: Record<string, string | null> }
  | { snapshot: string; userXattrsOnly?: boolean }
  | { exists: string }
  | { readdir: string }
  | { readFile: string }
  | { write: string; data: string }
  | { mntns: true }
  /** A shell script (sh -c) with the plan's environment. */
  | { sh: string };

export type StepResult =
  | { atomfs: string[]; status: number | null; stdout: string; stderr: string }
  | { sh: string; status: number | null; stdout: string; stderr: string }
  | { snapshot: EntrySnap[] }
  | { exists: boolean }
  | { readdir: string[] }
  | { readFile: string }
  | { write: 'ok' }
  | { mntns: string }
  | { error: string };

export interface Plan {
  steps: Step[];
  /** Environment for every atomfs step (a step's env overrides; null removes). */
  env?: Record<string, string | null>;
}

const ATOMFS = fileURLToPath(new URL('../../bin/atomfs', import.meta.url));

function errCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message ?? String(err);
}

function envFor(plan: Plan, extra: Record<string, string | null> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries({ ...plan.env, ...extra })) {
    if (v === null) delete env[k];
    else env[k] = v;
  }
  return env;
}

async function runStep(step: Step, plan: Plan): Promise<StepResult> {
  if ('atomfs' in step || 'sh' in step) {
    const [argv, env] = 'atomfs' in step ? [[ATOMFS, ...step.atomfs], envFor(plan, step.env)] : [['-c', step.sh], envFor(plan)];
    const r = spawnSync('atomfs' in step ? process.execPath : 'sh', argv, { env, encoding: 'utf8', timeout: 120_000 });
    const out = { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? `\n${r.error.message}` : '') };
    return 'atomfs' in step ? { atomfs: step.atomfs, ...out } : { sh: step.sh, ...out };
  }
  try {
    if ('snapshot' in step) {
      // In a user namespace trusted.* xattrs cannot be read (EPERM even for its root): list only user.*.
      const snap = await snapshotDir(step.snapshot, { xattrs: !step.userXattrsOnly });
      if (step.userXattrsOnly) await addUserXattrs(step.snapshot, snap);
      return { snapshot: [...snap.values()] };
    }
    if ('exists' in step) return { exists: existsSync(step.exists) };
    if ('readdir' in step) return { readdir: readdirSync(step.readdir).sort() };
    if ('readFile' in step) return { readFile: readFileSync(step.readFile, 'utf8') };
    if ('write' in step) {
      writeFileSync(step.write, step.data);
      return { write: 'ok' };
    }
    return { mntns: readlinkSync('/proc/self/ns/mnt').slice(5, -1) };
  } catch (err) {
    return { error: errCode(err) };
  }
}

/** getfattr -m '^user\.' over the tree; keys as snapshotDir makes them (paths here are ASCII). */
async function addUserXattrs(root: string, snap: Map<string, EntrySnap>): Promise<void> {
  const r = await run(['getfattr', '-R', '-P', '-h', '-d', '-m', '^user\\.', '-e', 'hex', '--absolute-names', root], { allowFail: true });
  for (const [k, x] of parseDump(r.stdout, Buffer.from(root, 'utf8'))) {
    const e = snap.get(k);
    if (e) e.xattrs = x;
  }
}

async function main(): Promise<void> {
  const plan = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Plan;
  const results: StepResult[] = [];
  for (const step of plan.steps) results.push(await runStep(step, plan));
  process.stdout.write(JSON.stringify(results) + '\n');
}

main().catch((err) => {
  process.stderr.write(`driver: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(2);
});
