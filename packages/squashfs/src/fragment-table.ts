import { CorruptImageError } from './errors.js';
import type { LookupTable } from './lookup-table.js';

/** Fragment table entry (16 bytes): where a fragment block is and its size word. */
export interface FragmentEntry {
  start: number;
  /** On-disk length of the fragment block. */
  length: number;
  compressed: boolean;
}

export function readFragmentEntry(table: LookupTable, index: number, referencedFrom?: number): FragmentEntry {
  const b = table.entry(index, referencedFrom);
  const start = b.readBigUInt64LE(0);
  if (start > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptImageError(`fragment ${index} start ${start} is out of range`, referencedFrom);
  const word = b.readUInt32LE(8);
  return { start: Number(start), length: word & 0xffffff, compressed: (word & 0x1000000) === 0 };
}
