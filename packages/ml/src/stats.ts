// Count tables and the smoothed probabilities the detectors read. Every estimate is Witten–Bell
// interpolation with a back-off distribution: P(x | c) = (n(c, x) + T(c) · P_backoff(x)) / (n(c) + T(c)),
// where T(c) is the number of distinct values seen in context c. A context that always saw one
// value gives little mass to a new one; a context that saw many gives more. No constant here is
// tuned to a data set.

/** Counts of values in one context. */
export class Counter {
  readonly counts = new Map<string, number>();
  total = 0;

  add(value: string, n = 1): void {
    this.counts.set(value, (this.counts.get(value) ?? 0) + n);
    this.total += n;
  }

  get(value: string): number {
    return this.counts.get(value) ?? 0;
  }

  get distinct(): number {
    return this.counts.size;
  }

  /** Witten–Bell estimate of P(value) given the back-off probability of the value. */
  prob(value: string, backoff: number): number {
    const t = this.counts.size;
    if (this.total === 0) return backoff;
    return (this.get(value) + t * backoff) / (this.total + t);
  }

  /** The most frequent values, most frequent first. */
  top(n: number): [string, number][] {
    return [...this.counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, n);
  }

  toJSON(): [string, number][] {
    return [...this.counts.entries()];
  }

  static fromJSON(entries: [string, number][]): Counter {
    const c = new Counter();
    for (const [k, n] of entries) c.add(k, n);
    return c;
  }
}

/** Counters by context key. */
export class CounterTable {
  readonly table = new Map<string, Counter>();

  add(context: string, value: string, n = 1): void {
    let c = this.table.get(context);
    if (c === undefined) {
      c = new Counter();
      this.table.set(context, c);
    }
    c.add(value, n);
  }

  get(context: string): Counter | undefined {
    return this.table.get(context);
  }

  /** Witten–Bell P(value | context), or the back-off when the context was never seen. */
  prob(context: string, value: string, backoff: number): number {
    const c = this.table.get(context);
    return c === undefined ? backoff : c.prob(value, backoff);
  }

  toJSON(): [string, [string, number][]][] {
    return [...this.table.entries()].map(([k, c]) => [k, c.toJSON()]);
  }

  static fromJSON(entries: [string, [string, number][]][]): CounterTable {
    const t = new CounterTable();
    for (const [k, c] of entries) t.table.set(k, Counter.fromJSON(c));
    return t;
  }
}

/** Circular (mod `size`) counts, kept as an array, e.g. hours of the day or days of the week. */
export class CyclicCounts {
  readonly counts: number[];
  total = 0;

  constructor(
    readonly size: number,
    counts?: number[],
  ) {
    this.counts = counts ?? new Array<number>(size).fill(0);
    this.total = this.counts.reduce((a, b) => a + b, 0);
  }

  add(slot: number, n = 1): void {
    this.counts[slot] = (this.counts[slot] ?? 0) + n;
    this.total += n;
  }

  /** Slots with any count. */
  get distinct(): number {
    let d = 0;
    for (const c of this.counts) if (c > 0) d++;
    return d;
  }

  /**
   * Witten–Bell P(slot) with a kernel: a neighbour slot's count counts half (an engineer who
   * works at 17:00 may work at 18:00). `kernel` 0 disables it (days of the week).
   */
  prob(slot: number, backoff: (slot: number) => number, kernel: number): number {
    if (this.total === 0) return backoff(slot);
    const n = this.size;
    const smooth = (s: number): number =>
      (this.counts[s] ?? 0) +
      kernel * ((this.counts[(s + 1) % n] ?? 0) + (this.counts[(s + n - 1) % n] ?? 0));
    const total = this.total * (1 + 2 * kernel);
    const t = this.distinct;
    return (smooth(slot) + t * backoff(slot)) / (total + t);
  }
}

/** A table of cyclic counts by context. */
export class CyclicTable {
  readonly table = new Map<string, CyclicCounts>();

  constructor(readonly size: number) {}

  add(context: string, slot: number): void {
    let c = this.table.get(context);
    if (c === undefined) {
      c = new CyclicCounts(this.size);
      this.table.set(context, c);
    }
    c.add(slot);
  }

  get(context: string): CyclicCounts | undefined {
    return this.table.get(context);
  }

  toJSON(): [string, number[]][] {
    return [...this.table.entries()].map(([k, c]) => [k, c.counts]);
  }

  static fromJSON(size: number, entries: [string, number[]][]): CyclicTable {
    const t = new CyclicTable(size);
    for (const [k, counts] of entries) t.table.set(k, new CyclicCounts(size, counts));
    return t;
  }
}

/**
 * A bounded sample of numbers (reservoir sampling with a deterministic generator), for value
 * bands: median, quantiles and spread.
 */
export class NumberSample {
  values: number[] = [];
  seen = 0;
  private state: number;

  constructor(
    readonly capacity = 256,
    seed = 1,
  ) {
    this.state = seed >>> 0 || 1;
  }

  private next(): number {
    // xorshift32
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 0x100000000;
  }

  add(x: number): void {
    this.seen++;
    if (this.values.length < this.capacity) {
      this.values.push(x);
      this.sorted = undefined;
      return;
    }
    const j = Math.floor(this.next() * this.seen);
    if (j < this.capacity) {
      this.values[j] = x;
      this.sorted = undefined;
    }
  }

  private sorted: number[] | undefined;

  quantile(q: number): number {
    this.sorted ??= [...this.values].sort((a, b) => a - b);
    const s = this.sorted;
    if (s.length === 0) return Number.NaN;
    const pos = q * (s.length - 1);
    const lo = Math.floor(pos);
    const hi = Math.ceil(pos);
    return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
  }

  toJSON(): { values: number[]; seen: number; state: number } {
    return { values: this.values, seen: this.seen, state: this.state };
  }

  static fromJSON(json: { values: number[]; seen: number; state: number }, capacity = 256): NumberSample {
    const s = new NumberSample(capacity, json.state);
    s.values = json.values;
    s.seen = json.seen;
    return s;
  }
}
