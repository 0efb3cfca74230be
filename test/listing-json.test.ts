/**
 * Issue 16: `atomfs ls --json` and `atomfs sqfs ls --json` print one JSON object a line in one
 * schema (packages/atomfs/src/listing.ts, README "Listings"), and what they say of each entry is
 * what the kernel's own mounts of the same layers show (loop squashfs; overlayfs for an image).
 */
import assert from 'node:assert/strict';
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { resolveImage } from '@atomfs/oci';
import { run, withLoopMount, withOverlayMount } from './lib/index.js';
import { ATOMFS, describe } from './reliability-common.js';

const SAMPLE = fileURLToPath(new URL('../../sample/', import.meta.url));
const KEYS = ['path', 'type', 'mode', 'uid', 'gid', 'size', 'mtime', 'nlink', 'inode'];

interface Rec {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  target?: string;
  [k: string]: unknown;
}

async function listing(args: string[]): Promise<Rec[]> {
  const r = await run([process.execPath, ATOMFS, ...args], { allowFail: true });
  assert.equal(r.status, 0, describe(r));
  const lines = r.stdout.toString().trimEnd().split('\n');
  return lines.map((l) => JSON.parse(l) as Rec);
}

const TYPE: Record<number, string> = { 0o100000: 'file', 0o040000: 'dir', 0o120000: 'symlink', 0o060000: 'block', 0o020000: 'char', 0o010000: 'fifo', 0o140000: 'socket' };

/** The same fields as the kernel's mount shows them (directory sizes differ by design: left out). */
function kernelView(root: string): Map<string, Partial<Rec>> {
  const out = new Map<string, Partial<Rec>>();
  const visit = (rel: string): void => {
    const st = lstatSync(join(root, rel));
    const type = TYPE[st.mode & 0o170000]!;
    out.set(rel === '' ? '/' : rel, {
      type,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: Math.floor(st.mtimeMs / 1000),
      ...(type !== 'dir' ? { size: st.size } : {}),
      ...(type === 'symlink' ? { target: readlinkSync(join(root, rel)) } : {}),
    });
    if (type === 'dir') for (const n of readdirSync(join(root, rel)).sort()) visit(`${rel}/${n}`);
  };
  visit('');
  return out;
}

function compare(records: Rec[], kernel: Map<string, Partial<Rec>>, what: string): void {
  for (const r of records) for (const k of KEYS) assert.ok(k in r, `${what}: ${r.path} has "${k}"`);
  assert.deepEqual(records.map((r) => r.path).sort(), [...kernel.keys()].sort(), `${what}: the same paths`);
  for (const r of records) {
    const k = kernel.get(r.path)!;
    const ours: Partial<Rec> = { type: r.type, mode: r.mode, uid: r.uid, gid: r.gid, mtime: r.mtime };
    if (r.type !== 'dir') ours.size = r.size;
    if (r.target !== undefined) ours.target = r.target;
    assert.deepEqual(ours, k, `${what}: ${r.path}`);
  }
}

test('sqfs ls --json of one image and ls --json of an OCI image: one schema, one object a line, each entry as the kernel’s mount shows it', async () => {
  const single = await listing(['sqfs', 'ls', '--json', join(SAMPLE, 'sample.sqfs')]);
  await withLoopMount(join(SAMPLE, 'sample.sqfs'), (mnt) => compare(single, kernelView(mnt), 'sqfs ls'));

  const image = await listing(['ls', '--json', join(SAMPLE, 'oci:sample')]);
  const { layers } = await resolveImage(join(SAMPLE, 'oci'), 'sample');
  const topFirst = layers.map((l) => l.path); // resolveImage gives the top layer first
  const mountAll = async (i: number, dirs: string[]): Promise<void> => {
    if (i === topFirst.length) {
      await withOverlayMount(dirs, (mnt) => compare(image, kernelView(mnt), 'ls'));
      return;
    }
    await withLoopMount(topFirst[i]!, (m) => mountAll(i + 1, [...dirs, m]));
  };
  await mountAll(0, []);
});
