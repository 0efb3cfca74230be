/**
 * A small least-recently-used map bounded by entry count (callers turn byte budgets into counts:
 * every entry of one cache has the same size). Map keeps insertion order, so re-inserting on a hit
 * makes the first key the least recently used one.
 */
export class LruMap<V> {
  private readonly map = new Map<number, V>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.map.size;
  }

  get(key: number): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  has(key: number): boolean {
    return this.map.has(key);
  }

  /** Inserts (or replaces) `key`; returns the value evicted to make room, if any, for reuse. */
  set(key: number, value: V): V | undefined {
    if (this.capacity <= 0) return undefined;
    this.map.delete(key);
    this.map.set(key, value);
    let evicted: V | undefined;
    while (this.map.size > this.capacity) {
      const oldest = this.map.keys().next().value as number;
      evicted = this.map.get(oldest);
      this.map.delete(oldest);
    }
    return evicted;
  }

  clear(): void {
    this.map.clear();
  }
}
