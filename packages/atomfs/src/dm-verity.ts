import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { FileByteSource, openVerified, VerityError } from '@atomfs/verity';
import { CommandError } from './errors.js';

/**
 * Kernel dm-verity through veritysetup, as Go atomfs does it with libcryptsetup: one device per
 * layer blob named "<layer sha256 hex>-verity", shared by every mount of that blob and closed
 * when its last user goes. Used only as host root on a kernel with device-mapper; elsewhere the
 * FUSE server verifies in userspace. The argv builders are separate so they can be tested on
 * machines without device-mapper.
 */
export function dmName(layerHex: string): string {
  return `${layerHex}-verity`;
}

export function dmDevice(layerHex: string): string {
  return `/dev/mapper/${dmName(layerHex)}`;
}

export function veritysetupOpenArgv(blob: string, layerHex: string, rootHash: string, hashOffset: number): string[] {
  // Data and hash device are the same file: the tree sits after the squashfs image at H.
  return ['veritysetup', 'open', blob, dmName(layerHex), blob, rootHash, `--hash-offset=${hashOffset}`];
}

export function veritysetupCloseArgv(layerHex: string): string[] {
  return ['veritysetup', 'close', dmName(layerHex)];
}

export function dmsetupTableArgv(layerHex: string): string[] {
  return ['dmsetup', 'table', dmName(layerHex)];
}

export function dmsetupStatusArgv(layerHex: string): string[] {
  return ['dmsetup', 'status', dmName(layerHex)];
}

/** The fields of a dm "verity" table line that identify what it verifies. */
export interface VerityTable {
  dataDevice: string;
  hashDevice: string;
  dataBlocks: number;
  hashStartBlock: number;
  algorithm: string;
  rootHash: string;
  salt: string;
}

/**
 * Parse `dmsetup table NAME`: "<start> <len> verity <version> <data_dev> <hash_dev> <data_bs>
 * <hash_bs> <num_data_blocks> <hash_start_block> <alg> <digest> <salt> [opts]".
 */
export function parseVerityTable(line: string): VerityTable {
  const f = line.trim().split(/\s+/);
  if (f[2] !== 'verity' || f.length < 13) throw new CommandError(`not a dm-verity table: "${line.trim().slice(0, 200)}"`);
  return {
    dataDevice: f[4]!,
    hashDevice: f[5]!,
    dataBlocks: Number(f[8]),
    hashStartBlock: Number(f[9]),
    algorithm: f[10]!,
    rootHash: f[11]!,
    salt: f[12]!,
  };
}

/** `dmsetup status` of a verity target ends with "V" (verified so far) or "C" (corruption seen). */
export function parseVerityStatus(line: string): 'V' | 'C' | 'unknown' {
  const last = line.trim().split(/\s+/)[3];
  return last === 'V' ? 'V' : last === 'C' ? 'C' : 'unknown';
}

function run(argv: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.error?.message ?? r.stderr ?? '').trim() };
}

/**
 * Make sure /dev/mapper/<hex>-verity exists and verifies `blob` against `rootHash`; returns the
 * device and whether this call created it. An existing device with another root hash is refused
 * with Go atomfs's words ("invalid root hash"), one that saw corruption too.
 */
export function openDmLayer(blob: string, layerHex: string, rootHash: string, hashOffset: number): { device: string; created: boolean } {
  const device = dmDevice(layerHex);
  let created = false;
  if (!existsSync(device)) {
    checkRootInUserspace(blob, layerHex, rootHash, hashOffset);
    const r = run(veritysetupOpenArgv(blob, layerHex, rootHash, hashOffset));
    if (!r.ok) throw new CommandError(`veritysetup open of layer ${layerHex} failed: ${r.err.split('\n').pop()}`);
    created = true;
  } else {
    const t = run(dmsetupTableArgv(layerHex));
    if (!t.ok) throw new CommandError(`problem getting hash from ${dmName(layerHex)}: ${t.err}`);
    const table = parseVerityTable(t.out);
    if (table.rootHash !== rootHash) throw new CommandError(`invalid root hash for ${dmName(layerHex)}: ${table.rootHash} (expected: ${rootHash})`);
  }
  const s = run(dmsetupStatusArgv(layerHex));
  const status = s.ok ? parseVerityStatus(s.out) : 'unknown';
  if (status !== 'V') {
    if (created) run(veritysetupCloseArgv(layerHex));
    // "C" right after the device was made: udev's blkid read a damaged block of the layer.
    throw new CommandError(
      status === 'C'
        ? `layer sha256:${layerHex}: verity reports corruption on device "${dmName(layerHex)}": a block read from it failed verification`
        : `invalid params for dm status for "${dmName(layerHex)}": ${s.out.trim() || s.err}`,
    );
  }
  return { device, created };
}

/**
 * The kernel's first check, made before a device exists: the top of the tree against the root
 * hash, then the path down to data block 0. veritysetup open does not check the tree, so a
 * wrong root hash would otherwise make a device whose every read fails: udev's blkid probes it
 * (retrying on EIO), the squashfs mount fails with "can't read superblock", and the close stays
 * busy until the probe ends. Refused here, nothing is made. Damage elsewhere in the tree or the
 * data is the kernel's to find, on read.
 */
function checkRootInUserspace(blob: string, layerHex: string, rootHash: string, hashOffset: number): void {
  const label = `sha256:${layerHex}`;
  let file: FileByteSource | undefined;
  try {
    file = new FileByteSource(blob, { label });
    openVerified(file, { hashOffset, rootHash, label, expectedDataBlocks: hashOffset / 4096, algorithms: ['sha256'] }).read(0, 4096);
  } catch (err) {
    const why = err instanceof VerityError ? err.detail : (err as Error).message;
    throw new CommandError(`layer ${label}: ${why}`, { cause: err });
  } finally {
    file?.close();
  }
}

/**
 * Whether the device named for `layerHex` is one atomfs opened for that layer: a verity target
 * whose data and hash device is a loop device over the layer's blob. Blobs are named by the
 * sha256 of their content, so the backing file's name is the layer hex. A device of that name
 * over anything else is someone else's, and an undo must not close it.
 */
export function isLayerDevice(layerHex: string): boolean {
  const t = run(dmsetupTableArgv(layerHex));
  if (!t.ok) return false;
  let table: VerityTable;
  try {
    table = parseVerityTable(t.out);
  } catch {
    return false;
  }
  if (table.dataDevice !== table.hashDevice) return false;
  const backing = loopBackingFile(table.dataDevice);
  return backing !== undefined && basename(backing.replace(/ \(deleted\)$/, '')) === layerHex;
}

/** The backing file of loop device "MAJOR:MINOR" (as dm tables name devices), if it is one. */
function loopBackingFile(majorMinor: string): string | undefined {
  try {
    return readFileSync(`/sys/dev/block/${majorMinor}/loop/backing_file`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Close the layer's device unless another mount still uses it or it is not atomfs's. */
export function closeDmLayerIfUnused(layerHex: string, mountSources: string[]): void {
  const device = dmDevice(layerHex);
  if (mountSources.includes(device) || !existsSync(device)) return;
  if (!isLayerDevice(layerHex)) return;
  // EBUSY right after an unmount is common (udev still has it open): retry a few times.
  for (let i = 0; i < 5; i++) {
    if (run(veritysetupCloseArgv(layerHex)).ok) return;
    spawnSync('sleep', ['1']);
  }
  throw new CommandError(`could not close ${dmName(layerHex)}: still busy`);
}

/** `atomfs verify` for kernel dm mounts: "<device>: OK" or "<device>: CORRUPTION FOUND". */
export function dmLayerStatus(layerHex: string): 'OK' | 'CORRUPTION FOUND' {
  const s = run(dmsetupStatusArgv(layerHex));
  return s.ok && parseVerityStatus(s.out) === 'V' ? 'OK' : 'CORRUPTION FOUND';
}
