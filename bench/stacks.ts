/**
 * The ways the benchmarks of issue 17 mount one image, each behind the same small interface:
 *   - `atomfs mount --backend fuse OCIDIR:TAG` (ours; verity on when the tag carries root hashes,
 *     off with `--allow-missing-verity` on a tag without them);
 *   - `atomfs sqfs mount` of a single layer (ours, no verity);
 *   - squashfuse_ll per layer, kernel overlayfs over them when there are several (what Go atomfs
 *     does as an unprivileged user);
 *   - the kernel: loop + squashfs per layer, overlayfs over them (Go atomfs as root without dm-verity).
 * Overlays get the options Go atomfs uses (`userxattr,index=off,xino=on`, read-only), layers are
 * given BOTTOM-most first. Every mount is made by the real command; `unmount` waits for the server
 * processes to exit, so the next measurement starts from nothing.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ATOMFS, BenchError, atomfsServerPid, clearStaleMount, pidsWith, sh, squashfuseDaemons, waitGone } from './proc.js';

export interface Layer {
  /** The layer file (squashfs, possibly followed by dm-verity data). */
  blob: string;
  /** Bytes of the squashfs part (where the verity data starts). */
  squashfsBytes: number;
}

export interface Stack {
  /** Table label. */
  tool: string;
  /** One of ours (gets ratio columns)? */
  ours: boolean;
  /** Mount commands as one shell script (timed by the mount latency workload). */
  mountScript(mp: string): string;
  mount(mp: string): void;
  unmount(mp: string): void;
  /** The user-space servers' pids while mounted (their CPU time is reported); none for the kernel. */
  servers(mp: string): number[];
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** `atomfs mount --backend fuse REF MP` with its state in `runDir`. */
export function atomfsMount(tool: string, ref: string, runDir: string, extra: string[] = []): Stack {
  const argv = (mp: string): string[] => [ATOMFS, 'mount', '--backend', 'fuse', ...extra, '--metadir', runDir, ref, mp];
  return {
    tool,
    ours: true,
    // The command as a user runs it (its #! line), not `node bin/atomfs`.
    mountScript: (mp) => argv(mp).map(q).join(' '),
    mount: (mp) => sh(argv(mp), 'atomfs mount'),
    servers: () => [atomfsServerPid(runDir)],
    unmount: (mp) => {
      let server: number[] = [];
      try {
        server = [atomfsServerPid(runDir)];
      } catch {
        // a mount that failed half-way may have recorded no server
      }
      sh([ATOMFS, 'umount', '--metadir', runDir, mp], 'atomfs umount');
      waitGone(server, 'atomfs server');
    },
  };
}

/** `atomfs sqfs mount` of one layer (verity off; the trailing verity data is never read). */
export function atomfsSqfsMount(tool: string, layer: Layer): Stack {
  const argv = (mp: string): string[] => [ATOMFS, 'sqfs', 'mount', layer.blob, mp];
  const servers = (mp: string): number[] => pidsWith(['sqfs', 'mount', '--foreground', mp]);
  return {
    tool,
    ours: true,
    mountScript: (mp) => argv(mp).map(q).join(' '),
    mount: (mp) => sh(argv(mp), 'atomfs sqfs mount'),
    servers,
    unmount: (mp) => {
      const pids = servers(mp);
      sh([ATOMFS, 'sqfs', 'umount', mp], 'atomfs sqfs umount');
      waitGone(pids, 'atomfs server');
    },
  };
}

/** Per-layer mountpoints of a multi-layer stack live in `work`; one layer is mounted on MP itself. */
function layered(
  tool: string,
  layers: Layer[],
  work: string,
  layerMount: (layer: Layer, dir: string) => string[],
  layerUnmount: (dir: string) => void,
  servers: (dir: string) => number[],
): Stack {
  const dirs = layers.length === 1 ? undefined : layers.map((_, i) => join(work, `layer${i + 1}`));
  const overlay = (mp: string): string[] =>
    ['mount', '-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${[...dirs!].reverse().join(':')},userxattr,index=off,xino=on`, mp];
  const steps = (mp: string): string[][] =>
    dirs === undefined ? [layerMount(layers[0]!, mp)] : [...layers.map((l, i) => layerMount(l, dirs[i]!)), overlay(mp)];
  const allServers = (mp: string): number[] => (dirs ?? [mp]).flatMap(servers);
  return {
    tool,
    ours: false,
    mountScript: (mp) => {
      for (const d of dirs ?? []) mkdirSync(d, { recursive: true });
      return steps(mp)
        .map((a) => a.map(q).join(' '))
        .join(' && ');
    },
    mount: (mp) => {
      for (const d of dirs ?? []) mkdirSync(d, { recursive: true });
      for (const a of steps(mp)) sh(a, tool);
    },
    servers: allServers,
    unmount: (mp) => {
      const pids = allServers(mp);
      if (dirs === undefined) {
        layerUnmount(mp);
      } else {
        clearStaleMount(mp);
        for (const d of dirs) layerUnmount(d);
        rmSync(work, { recursive: true, force: true });
      }
      waitGone(pids, tool);
    },
  };
}

export function squashfuseStack(tool: string, layers: Layer[], work: string): Stack {
  return layered(
    tool,
    layers,
    work,
    // Default (daemon) mode: returns once the mount is up, like ours.
    (l, dir) => ['squashfuse_ll', l.blob, dir],
    (dir) => {
      sh(['fusermount3', '-u', dir], 'fusermount3 -u');
    },
    squashfuseDaemons,
  );
}

export function kernelStack(tool: string, layers: Layer[], work: string): Stack {
  return layered(
    tool,
    layers,
    work,
    // mount's loop option sets autoclear: the loop device goes with the umount.
    (l, dir) => ['mount', '-t', 'squashfs', '-o', `loop,ro,sizelimit=${l.squashfsBytes}`, l.blob, dir],
    (dir) => {
      sh(['umount', dir], 'umount');
    },
    () => [],
  );
}

/** Undo whatever an interrupted run left under `mp` and the stacks' work dirs. */
export function clearStacks(mp: string, works: string[]): void {
  clearStaleMount(mp);
  for (const w of works) {
    for (let i = 1; i <= 8; i++) clearStaleMount(join(w, `layer${i}`));
    rmSync(w, { recursive: true, force: true });
  }
}

/** Run `f` on a fresh mount of `stack` at `mp`, always unmounting it again. */
export function withMount<T>(stack: Stack, mp: string, f: () => T): T {
  stack.mount(mp);
  let ok = false;
  try {
    const r = f();
    ok = true;
    return r;
  } finally {
    try {
      stack.unmount(mp);
    } catch (err) {
      // the workload's error is the one to report
      if (ok) throw err;
    }
  }
}

export { BenchError };
