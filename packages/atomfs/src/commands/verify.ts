import { existsSync, readFileSync, statSync } from 'node:fs';
import { findMount } from '@atomfs/fuse/mountinfo';
import {
  HashWorkerError,
  RootHashMismatchError,
  verifyAll,
  VerityArgumentError,
  VerityMismatchError,
  VeritySuperblockError,
  VerityTruncatedError,
  type VerifyAllResult,
} from '@atomfs/verity';
import { parse } from '../args.js';
import { CommandError, UsageError } from '../errors.js';
import { hashOffsetOf, LayerOpenError, layerSpecs, type LayerSpec } from '../layers/layer-spec.js';
import { findRecord, metadirFor } from '../metadir.js';
import { resolveTarget } from '../target.js';
import { resolveRef } from './image-ref.js';

// `atomfs verify` in a module of its own: it needs the OCI reader and the verifier, not the
// squashfs reader, its decoders, the overlay or the FUSE server (loading those was a large part
// of verifying a small layer).

export const VERIFY_HELP = `Usage: atomfs verify [--json] [--metadir DIR] [--insecure] TARGET|OCIDIR:TAG|docker://HOST/REPO:TAG

Check every block of every layer that has a root hash against its dm-verity tree: the layers of
the image mounted at TARGET, or of an image in an OCI layout. Prints "<layer>: OK" or
"<layer>: CORRUPTION FOUND" per layer; exit 1 if any layer is corrupt or none could be checked.
Bytes after the end of a layer's hash tree count as corruption (stacker writes none, and
dm-verity would never read them). A failure that says nothing about the layer's bytes (too few
open files, a hash thread that cannot start) is an error, not a corruption verdict.`;

interface LayerVerdict {
  layer: string;
  status: 'OK' | 'CORRUPTION FOUND' | 'NO ROOT HASH';
  error?: string;
}

/** Failures that are facts about the layer file's bytes (everything else is about us or the host). */
function isCorruption(err: unknown): boolean {
  return (
    err instanceof VerityMismatchError ||
    err instanceof RootHashMismatchError ||
    err instanceof VerityTruncatedError ||
    err instanceof VeritySuperblockError ||
    // Reads outside the file that a superblock's geometry asked for.
    err instanceof VerityArgumentError ||
    err instanceof LayerOpenError
  );
}

/** A layer's blob holds bytes the hash tree does not cover. */
class TrailingBytesError extends Error {
  constructor(treeEnd: number, fileSize: number) {
    super(`${fileSize - treeEnd} bytes after the end of the hash tree (it ends at offset ${treeEnd}, the file has ${fileSize} bytes)`);
  }
}

function checkNothingAfterTree(path: string, result: VerifyAllResult): void {
  const treeEnd = result.geometry.hashEndBlock * result.geometry.hashBlockSize;
  const size = statSync(path).size;
  if (size > treeEnd) throw new TrailingBytesError(treeEnd, size);
}

/** The soft RLIMIT_AS in bytes (ulimit -v), undefined when unlimited or unknown. */
function addressSpaceLimit(): number | undefined {
  try {
    const m = /^Max address space\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every worker thread is a V8 isolate that reserves its own address space (code range, heap):
 * under a `ulimit -v` too small for one more, starting the thread is a fatal V8 OOM of the whole
 * process, which no catch sees. Below this limit the data level is hashed on this thread only.
 */
const ADDRESS_SPACE_FOR_HASH_WORKERS = 4 * 1024 ** 3;

async function fetchWhole(l: LayerSpec): Promise<void> {
  const { pullBlobs, RegistryError } = await import('@atomfs/registry');
  try {
    await pullBlobs([l.remote!], { checkDigest: false });
  } catch (err) {
    if (err instanceof RegistryError) throw new CommandError(`cannot verify layer ${l.digest}: ${err.message}`);
    throw err;
  }
}

export async function verifyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, metadir: { type: 'string' }, insecure: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    process.stdout.write(VERIFY_HELP + '\n');
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('Usage: atomfs verify mountpoint');
  const arg = positionals[0]!;
  let layers: LayerSpec[];
  let where: string;
  const asPath = resolveTarget(arg);
  const mount = findMount(asPath);
  if (existsSync(asPath) || mount !== undefined) {
    const found = findRecord(asPath, values.metadir);
    const metadir = found?.metadir ?? metadirFor(asPath, values.metadir);
    const record = found?.record;
    if (mount === undefined) throw new CommandError(`${asPath} is not a mountpoint`);
    if (record === undefined) throw new CommandError(`${asPath} is not an atomfs mount (no metadata in ${metadir})`);
    layers = record.atomfs.layers;
    where = `${metadir}/mounts`;
    const dmSteps = record.atomfs.mounts.filter((m) => m.dm !== undefined);
    if (record.atomfs.backend === 'kernel') {
      // The kernel verifies these; ask device-mapper what it saw (Go atomfs's verify).
      if (dmSteps.length === 0) throw new CommandError(`no applicable mounts found in "${where}"`);
      const { dmDevice, dmLayerStatus } = await import('../dm-verity.js');
      let bad = false;
      for (const m of dmSteps) {
        const status = dmLayerStatus(m.dm!);
        bad ||= status !== 'OK';
        process.stdout.write(`${dmDevice(m.dm!)}: ${status}\n`);
      }
      if (bad) throw new CommandError('Found corrupt devices in molecule');
      return 0;
    }
  } else {
    const { image } = await resolveRef(arg, { insecure: values.insecure === true });
    layers = layerSpecs(image.layers, true);
    where = arg;
  }
  const verdicts: LayerVerdict[] = [];
  const tty = process.stderr.isTTY === true && values.json !== true;
  const asLimit = addressSpaceLimit();
  const lowAddressSpace = asLimit !== undefined && asLimit < ADDRESS_SPACE_FOR_HASH_WORKERS;
  for (const l of layers) {
    if (l.rootHash === undefined) {
      verdicts.push({ layer: l.digest, status: 'NO ROOT HASH' });
      continue;
    }
    const rootHash = l.rootHash;
    // A registry layer is checked in the blob cache: fetch what is not there yet (the verdict,
    // not the digest, tells whether the bytes are right).
    if (l.remote !== undefined) await fetchWhole(l);
    // A path (not an open source) lets verifyAll hash on worker threads: ~2x on two cores.
    const run = (threads?: number): Promise<VerifyAllResult> =>
      verifyAll(l.path, {
        hashOffset: hashOffsetOf(l),
        rootHash,
        label: l.digest,
        ...(threads !== undefined ? { threads } : {}),
        ...(tty ? { onProgress: (d: number, t: number) => process.stderr.write(`\r${l.digest.slice(0, 19)} ${((100 * d) / Math.max(t, 1)).toFixed(0).padStart(3)}%`) } : {}),
      });
    try {
      let result: VerifyAllResult;
      try {
        result = await run(lowAddressSpace ? 1 : undefined);
      } catch (err) {
        // A hash thread that cannot start (ulimit -n) tells nothing about the layer: hash here.
        if (!(err instanceof HashWorkerError)) throw err;
        result = await run(1);
      }
      checkNothingAfterTree(l.path, result);
      verdicts.push({ layer: l.digest, status: 'OK' });
    } catch (err) {
      if (!isCorruption(err) && !(err instanceof TrailingBytesError)) {
        throw new CommandError(`cannot verify layer ${l.digest}: ${err instanceof Error ? err.message : String(err)}`);
      }
      verdicts.push({ layer: l.digest, status: 'CORRUPTION FOUND', error: (err as Error).message });
    } finally {
      if (tty) process.stderr.write('\r\x1b[K');
    }
  }
  const checked = verdicts.filter((v) => v.status !== 'NO ROOT HASH');
  if (values.json) process.stdout.write(JSON.stringify(verdicts, null, 1) + '\n');
  else for (const v of verdicts) process.stdout.write(`${v.layer}: ${v.status}${v.error ? ` (${v.error})` : ''}\n`);
  if (checked.length === 0) throw new CommandError(`no applicable mounts found in "${where}"`);
  if (checked.some((v) => v.status !== 'OK')) throw new CommandError('Found corrupt devices in molecule');
  return 0;
}
