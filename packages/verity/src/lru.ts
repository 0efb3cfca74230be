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

  set(key: number, value: V): void {
    if (this.capacity <= 0) return;
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.capacity) {
      const oldest = this.map.keys().next().value as number;
      this.map.delete(oldest);
    }
  }

  clear(): void {
    this.map.clear();
  }
}
