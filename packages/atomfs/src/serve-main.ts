import { CommandError } from './errors.js';
import { serveCommand } from './commands/serve.js';

/**
 * The entry of a detached server (`atomfs __serve SPEC`): it loads the FUSE server and nothing
 * of the CLI, so a mount's server answers the kernel sooner. Errors as the CLI prints them.
 */
export async function main(argv: string[]): Promise<number> {
  try {
    return await serveCommand(argv.slice(1));
  } catch (err) {
    process.stderr.write(`Error: ${err instanceof CommandError ? err.message : ((err as Error).stack ?? String(err))}\n`);
    return 1;
  }
}
