/**
 * Node ids: one u64 per overlay entry, computed from where the entry comes from, so the same
 * path in the same layer set gets the same id in every process, thread and mount.
 *
 *   id = ((layerIndex + 1) << 48) | key
 *
 * `layerIndex` is the topmost layer providing the entry (0 = top), `key` the layer's 48-bit key of
 * the node (hard links share it, so they share the id). The +1 keeps every id >= 2^48: ids 0 and
 * 1 never occur, so a FUSE server can show the root as node 1 without colliding with any id.
 */
import { LayerSetupError } from './errors.js';

export const KEY_BITS = 48n;
export const MAX_KEY = 2 ** 48 - 1;
/** Layer index + 1 must fit in the 16 bits above the key. */
export const MAX_LAYERS = 0xffff;

export function packId(layerIndex: number, key: number): bigint {
  if (!Number.isSafeInteger(key) || key < 0 || key > MAX_KEY) {
    throw new LayerSetupError(`layer ${layerIndex} gave key ${key}, which is not an integer in [0, 2^48)`);
  }
  return (BigInt(layerIndex + 1) << KEY_BITS) | BigInt(key);
}

export interface UnpackedId {
  layerIndex: number;
  key: number;
}

/** The (layer, key) an id was made of, or undefined when no layer of `layerCount` could have made it. */
export function unpackId(id: bigint, layerCount: number): UnpackedId | undefined {
  if (typeof id !== 'bigint' || id < 0n || id > 0xffff_ffff_ffff_ffffn) return undefined;
  const layerIndex = Number(id >> KEY_BITS) - 1;
  if (layerIndex < 0 || layerIndex >= layerCount) return undefined;
  return { layerIndex, key: Number(id & BigInt(MAX_KEY)) };
}
