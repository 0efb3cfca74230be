import { InterruptedError } from '../errors.js';
import { writeRecord, type MountRecord, type MountStep } from '../metadir.js';

/** The record and the journal of one mount in progress. */
export class Journal {
  constructor(
    readonly metadir: string,
    readonly record: MountRecord,
    private readonly signal: AbortSignal | undefined,
  ) {
    writeRecord(metadir, record);
  }

  /** Record `step` as pending, do it, record it as done. */
  async step(step: MountStep, act: () => void | Promise<void>): Promise<void> {
    // Signals are delivered by the event loop, which the synchronous steps before held up.
    await new Promise((r) => setImmediate(r));
    if (this.signal?.aborted) throw new InterruptedError('interrupted');
    const s: MountStep = { ...step, pending: true };
    this.record.atomfs.mounts.push(s);
    this.save();
    await act();
    delete s.pending;
    this.save();
  }

  save(): void {
    writeRecord(this.metadir, this.record);
  }
}
