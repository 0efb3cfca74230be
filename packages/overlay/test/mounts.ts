/**
 * Scratch space for a test: one temp dir plus the kernel overlay mounts made in it, all undone
 * by a single t.after hook (it runs also when the test fails), mounts first, newest first.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

function isMounted(mp: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === mp);
}

export class Scratch {
  readonly dir: string;
  private readonly mounts: string[] = [];

  constructor(t: TestContext, prefix = 'atomfs-overlay-') {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    t.after(() => this.cleanup());
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** mount -t overlay overlay -o OPTIONS at a fresh directory NAME; returns the mountpoint. */
  mountOverlay(name: string, options: string): string {
    const mp = this.path(name);
    mkdirSync(mp, { recursive: true });
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', options, mp], { encoding: 'utf8' });
    if (r.status !== 0) {
      const dmesg = spawnSync('dmesg', { encoding: 'utf8' }).stdout?.split('\n').slice(-5).join('\n') ?? '';
      throw new Error(`mount -t overlay -o ${options} failed: ${r.stderr ?? r.error?.message}\n${dmesg}`);
    }
    this.mounts.push(mp);
    return mp;
  }

  unmount(mp: string): void {
    execFileSync('umount', [mp], { stdio: 'pipe' });
    this.mounts.splice(this.mounts.indexOf(mp), 1);
  }

  private cleanup(): void {
    for (const mp of this.mounts.reverse()) {
      if (spawnSync('umount', [mp], { stdio: 'pipe' }).status !== 0 && isMounted(mp)) {
        // Busy (a stray open file): detach, so the tree below can still be removed.
        spawnSync('umount', ['-l', mp], { stdio: 'pipe' });
      }
    }
    this.mounts.length = 0;
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const mp = line.split(' ')[1];
      if (mp !== undefined && mp.startsWith(this.dir + '/')) spawnSync('umount', ['-l', mp], { stdio: 'pipe' });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
