/**
 * The one cache of the readers: least recently used, bounded by the sum of its entries' costs
 * (bytes, or 1 per entry for a count bound), so a cache of 1 MiB data blocks and one of 8 KiB
 * metadata blocks share one budget model. Map iteration order is insertion order, which makes
 * "delete + set" an O(1) touch.
 */
/** One cached value, its cost, and when it was last moved up. */
class LruEntry<V> {
  stamp = -1;
  constructor(
    readonly value: V,
    readonly bytes: number,
    stamp: number,
  ) {
    // Stored twice on purpose: V8 treats a field nobody has stored to again as a constant and
    // compiles the code around the cache with it; the first move-up in get() then threw away
    // every compiled function that had inlined a cache lookup (a dozen, mid-walk, in a fresh
    // server). Stored twice here, stamp is a variable from the first entry on.
    this.stamp = stamp;
  }
}

export class Lru<K, V> {
  private readonly map = new Map<K, LruEntry<V>>();
  private used = 0;
  /** Bytes ever inserted: an entry's stamp says how recently (in bytes) it was last moved up. */
  private clock = 0;

  /**
   * `onEvict` receives each value the cache drops to stay within budget or replaces on `set`
   * (not values refused for being larger than the budget: the caller still holds those).
   */
  constructor(
    readonly capacityBytes: number,
    private readonly onEvict?: (value: V) => void,
  ) {}

  get(key: K): V | undefined {
    const hit = this.map.get(key);
    if (hit === undefined) return undefined;
    // Move the entry to the young end only when it has drifted into the older half: an entry
    // inserted or touched within the last half of the budget is safe from eviction anyway.
    // Delete + set on every hit made Map upkeep a visible share of a FUSE server's CPU on a walk.
    if (this.clock - hit.stamp > this.capacityBytes / 2) {
      this.map.delete(key);
      this.map.set(key, hit);
      hit.stamp = this.clock;
    }
    return hit.value;
  }

  /** Whether `key` is cached (without touching it). */
  has(key: K): boolean {
    return this.map.has(key);
  }

  set(key: K, value: V, bytes = 1): void {
    const old = this.map.get(key);
    if (old !== undefined) {
      this.used -= old.bytes;
      this.map.delete(key);
      if (old.value !== value) this.onEvict?.(old.value);
    }
    // A value larger than the whole budget is not kept at all; the caller still has it.
    if (bytes > this.capacityBytes) return;
    this.clock += bytes;
    this.map.set(key, new LruEntry(value, bytes, this.clock));
    this.used += bytes;
    if (this.used > this.capacityBytes) this.evict(this.capacityBytes - (this.capacityBytes >> 3));
  }

  /**
   * Drops the oldest entries until at most `target` bytes are used. In batches (down to 7/8 of
   * the budget) with one iterator: V8 leaves a hole for each deleted Map entry until it rehashes,
   * and a fresh keys().next() per eviction walked over all of them (a cold walk of many inodes
   * through a smaller inode cache spent a visible share of a FUSE server's CPU there).
   */
  private evict(target: number): void {
    for (const [key, entry] of this.map) {
      if (this.used <= target) break;
      this.used -= entry.bytes;
      this.map.delete(key);
      this.onEvict?.(entry.value);
    }
  }

  /** The sum of the entries' costs. */
  get costUsed(): number {
    return this.used;
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
    this.used = 0;
  }
}
