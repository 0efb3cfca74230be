/**
 * A least-recently-used cache bounded by the sum of its values' sizes in bytes (not by entry
 * count), so a cache of 1 MiB data blocks and one of 8 KiB metadata blocks can share one budget
 * model. Map iteration order is insertion order, which makes "delete + set" an O(1) touch.
 */
export class ByteLru<K, V> {
  private readonly map = new Map<K, { value: V; bytes: number }>();
  private used = 0;

  constructor(readonly capacityBytes: number) {}

  get(key: K): V | undefined {
    const hit = this.map.get(key);
    if (hit === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, hit);
    return hit.value;
  }

  set(key: K, value: V, bytes: number): void {
    const old = this.map.get(key);
    if (old !== undefined) {
      this.used -= old.bytes;
      this.map.delete(key);
    }
    // A value larger than the whole budget is not kept at all; the caller still has it.
    if (bytes > this.capacityBytes) return;
    this.map.set(key, { value, bytes });
    this.used += bytes;
    while (this.used > this.capacityBytes) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      const victim = this.map.get(oldest.value)!;
      this.used -= victim.bytes;
      this.map.delete(oldest.value);
    }
  }

  get bytesUsed(): number {
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
