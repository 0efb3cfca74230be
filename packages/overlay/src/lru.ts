/**
 * A least-recently-used map bounded by the sum of its entries' costs (bytes, or 1 per entry for
 * a count bound). Map iteration order is insertion order, so "delete + set" is an O(1) touch and
 * the first key is always the oldest.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, { value: V; cost: number }>();
  private used = 0;

  constructor(readonly capacity: number) {}

  get(key: K): V | undefined {
    const hit = this.map.get(key);
    if (hit === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, hit);
    return hit.value;
  }

  set(key: K, value: V, cost = 1): void {
    const old = this.map.get(key);
    if (old !== undefined) {
      this.used -= old.cost;
      this.map.delete(key);
    }
    // Something larger than the whole budget is not kept; the caller still holds it.
    if (cost > this.capacity) return;
    this.map.set(key, { value, cost });
    this.used += cost;
    while (this.used > this.capacity) {
      const oldest = this.map.keys().next();
      if (oldest.done === true) break;
      this.used -= this.map.get(oldest.value)!.cost;
      this.map.delete(oldest.value);
    }
  }

  get size(): number {
    return this.map.size;
  }

  get costUsed(): number {
    return this.used;
  }
}
