/**
 * Unprivileged execution: a throw-away system user, and running a command as that user inside a
 * new user + mount namespace where it is "root" (what atomfs does to mount FUSE without privileges).
 * Use one user name per test file (e.g. "atomfs-test-fuse"): test files run concurrently and
 * removeTestUser of a name another file still uses would pull the user from under it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, rmSync, statSync } from 'node:fs';
import { CommandError, run, runSync, type RunOptions, type RunResult } from './exec.js';
import type { CleanupStack } from './cleanup.js';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
}

export class TestUserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

const NAME_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

function lookup(name: string): TestUser | undefined {
  const u = runSync(['id', '-u', name], { allowFail: true });
  if (u.status !== 0) return undefined;
  const g = runSync(['id', '-g', name]);
  return { name, uid: Number(u.stdout.toString('utf8').trim()), gid: Number(g.stdout.toString('utf8').trim()) };
}

/**
 * Create user `name` (no home dir, own group) unless it exists; returns its ids. With `stack`,
 * the user is removed when the stack runs (only if this call created it).
 */
export function ensureTestUser(name: string, stack?: CleanupStack): TestUser {
  if (!NAME_RE.test(name)) throw new TestUserError(`bad user name ${JSON.stringify(name)}`);
  const existing = lookup(name);
  if (existing) return existing;
  const r = runSync(['useradd', '-M', '-U', '-s', '/bin/bash', name], { allowFail: true });
  // Status 9: created concurrently by another test process; fine as long as it exists now.
  if (r.status !== 0 && r.status !== 9) throw new CommandError(['useradd', name], r.status, r.signal, r.stderr.toString('utf8'));
  const user = lookup(name);
  if (!user) throw new TestUserError(`useradd ${name} succeeded but id cannot find it`);
  if (user.uid === 0) throw new TestUserError(`${name} has uid 0`);
  if (stack && r.status === 0) stack.add(`userdel ${name}`, () => removeTestUser(name));
  return user;
}

/** Delete user `name` and its group; no error if it does not exist. */
export function removeTestUser(name: string): void {
  if (!NAME_RE.test(name)) throw new TestUserError(`bad user name ${JSON.stringify(name)}`);
  const user = lookup(name);
  if (!user) return;
  // atomfs's per-user runtime dir when the user mounted without --metadir: the next user given
  // this uid must not inherit it (atomfs would rightly refuse it as someone else's).
  rmSync(`/tmp/atomfs-run-${user.uid}`, { recursive: true, force: true });
  const r = runSync(['userdel', name], { allowFail: true });
  // 6: does not exist (raced with another cleanup).
  if (r.status !== 0 && r.status !== 6) throw new CommandError(['userdel', name], r.status, r.signal, r.stderr.toString('utf8'));
}

/** argv that runs `argv` as `user` in a new user+mount namespace mapped to root (unshare -Umr). */
export function usernsArgv(user: string, argv: readonly string[]): string[] {
  if (!NAME_RE.test(user)) throw new TestUserError(`bad user name ${JSON.stringify(user)}`);
  if (argv.length === 0) throw new TestUserError('empty argv');
  return ['runuser', '-u', user, '--', 'unshare', '-Umr', '--', ...argv];
}

/** Run `argv` as `user` in its own user namespace; output captured, non-zero exit not thrown. */
export function runAsUserInUserns(user: string, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(usernsArgv(user, argv), { allowFail: true, ...opts });
}

/**
 * Start `argv` as `user` in its own user namespace and leave it running (e.g. a FUSE server).
 * The child leads its own process group; `stack` (if given) SIGKILLs that group at cleanup.
 */
export function spawnAsUserInUserns(user: string, argv: readonly string[], stack?: CleanupStack): ChildProcess {
  const [cmd, ...args] = usernsArgv(user, argv);
  const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  if (stack) {
    stack.add(`kill process group ${child.pid}`, () => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      }
    });
  }
  return child;
}

/**
 * Make /dev/fuse usable by unprivileged users (distributions ship it 0666; this machine ships
 * 0600). Returns the previous permission bits.
 */
export function chmodDevFuse(): number {
  const before = statSync('/dev/fuse').mode & 0o7777;
  chmodSync('/dev/fuse', 0o666);
  return before;
}
