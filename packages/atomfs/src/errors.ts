/** Wrong command line: printed with a hint to --help, exit status 1 (as Go atomfs / urfave/cli). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A failure the user must see as one line (no stack): exit status 1. */
export class CommandError extends Error {
  override name = 'CommandError';
}

/** The command was stopped by a signal (Ctrl-C) and undid what it had done. */
export class InterruptedError extends CommandError {
  override name = 'InterruptedError';
}
