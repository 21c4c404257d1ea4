/**
 * Values by integer key, for keys handed out in increasing order and mostly
 * released in about the order they were taken: call IDs, send tokens, call
 * serial numbers. It stands where a Map would, on the paths every call takes.
 *
 * Why not a Map: a Map that keeps taking new keys and deleting old ones
 * rehashes into a new table every few dozen keys, and V8 leaves each table it
 * replaced pointing at its successor (for iterators that may still walk it),
 * with the values it held still in it. Once a mark-compact has moved the
 * current table into the old generation, that chain of dead tables reaches
 * every table made after it, so every value put into the Map from then on
 * survives the scavenges until the next mark-compact: it is copied, promoted
 * and collected late, and V8 grows its young generation to the maximum under
 * the survival (measured: a Map with 16 live entries churning through 3
 * million keys had 14.6 MB survive each scavenge after one mark-compact; a
 * slot array, 5 KB). Here a key's slot is its low bits, and deleting clears
 * the slot in place; a key whose slot is taken by a live older key (a call
 * that outlives the table's span) waits in a small Map of its own.
 */
export class IdTable<T> {
  private ids: number[] = [];
  private slots: Array<T | undefined> = [];
  private mask = 0;
  private spill: Map<number, T> | undefined;
  private count = 0;

  constructor(capacity = 16) {
    this.resize(Math.max(4, 2 ** Math.ceil(Math.log2(capacity))));
  }

  get size(): number {
    return this.count;
  }

  get(key: number): T | undefined {
    const i = key & this.mask;
    if (this.ids[i] === key) return this.slots[i];
    return this.spill === undefined ? undefined : this.spill.get(key);
  }

  has(key: number): boolean {
    return this.get(key) !== undefined;
  }

  /** Adds `key` (a non-negative integer, not in the table) with `value` (not undefined). */
  set(key: number, value: T): void {
    if (2 * (this.count + 1) > this.ids.length) this.resize(2 * this.ids.length);
    this.count++;
    this.place(key, value);
  }

  delete(key: number): boolean {
    const i = key & this.mask;
    if (this.ids[i] === key && this.slots[i] !== undefined) {
      this.ids[i] = -1;
      this.slots[i] = undefined;
      this.count--;
      return true;
    }
    if (this.spill === undefined || !this.spill.delete(key)) return false;
    if (this.spill.size === 0) this.spill = undefined;
    this.count--;
    return true;
  }

  /** The keys, in order. */
  keys(): number[] {
    return this.entries().map(([key]) => key);
  }

  /** The values, in the order of their keys. */
  values(): T[] {
    return this.entries().map(([, value]) => value);
  }

  clear(): void {
    this.count = 0;
    this.spill = undefined;
    this.resize(16);
  }

  private entries(): Array<[number, T]> {
    const out: Array<[number, T]> = [];
    for (let i = 0; i < this.ids.length; i++) if (this.ids[i] >= 0) out.push([this.ids[i], this.slots[i]!]);
    if (this.spill) out.push(...this.spill);
    return out.sort((a, b) => a[0] - b[0]);
  }

  private place(key: number, value: T): void {
    const i = key & this.mask;
    if (this.ids[i] < 0) {
      this.ids[i] = key;
      this.slots[i] = value;
    } else {
      (this.spill ??= new Map()).set(key, value);
    }
  }

  private resize(capacity: number): void {
    const old = this.count > 0 ? this.entries() : [];
    this.ids = new Array<number>(capacity).fill(-1);
    this.slots = new Array<T | undefined>(capacity).fill(undefined);
    this.mask = capacity - 1;
    this.spill = undefined;
    for (const [key, value] of old) this.place(key, value);
  }
}
