import { parse } from '../args.js';
import { CommandError, UsageError } from '../errors.js';
import { resolveRef } from './image-ref.js';

export const PULL_HELP = `Usage: atomfs pull [--insecure] docker://HOST[:PORT]/REPO:TAG

Fetch every layer of a registry image into the host's blob cache (root: /var/cache/atomfs,
others: $XDG_CACHE_HOME/atomfs or ~/.cache/atomfs; ATOMFS_CACHE_DIR overrides), so later mounts,
ls and cat of it read locally. Blobs partly there are completed; each whole blob is checked
against its digest (a mismatch removes it from the cache and fails). The cache is kept under
ATOMFS_CACHE_MAX_BYTES (default 20 GiB), dropping the blobs used longest ago.
--insecure allows plain HTTP to a registry on loopback.`;

export async function pullCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { insecure: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    process.stdout.write(PULL_HELP + '\n');
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('pull takes docker://HOST[:PORT]/REPO:TAG');
  if (!positionals[0]!.startsWith('docker://')) throw new UsageError(`pull takes a docker:// reference, not ${JSON.stringify(positionals[0])}`);
  const { image } = await resolveRef(positionals[0]!, { insecure: values.insecure === true });
  const { pullBlobs, RegistryError, trimFor } = await import('@atomfs/registry');
  const blobs = image.layers.map((l) => (l as { remote?: import('@atomfs/registry').RemoteBlob }).remote!);
  try {
    const r = await pullBlobs(blobs, { onBlob: (d, n) => process.stdout.write(`${d}: ${n === 0 ? 'cached' : `fetched ${n} bytes`}\n`) });
    // What was fetched counts against the cache's bound too (older blobs make room).
    trimFor(blobs);
    process.stdout.write(`${image.manifestDigest}: ${blobs.length} layer${blobs.length === 1 ? '' : 's'}, ${r.total} bytes, ${r.fetched} fetched\n`);
  } catch (err) {
    if (err instanceof RegistryError) throw new CommandError(err.message);
    throw err;
  }
  return 0;
}
