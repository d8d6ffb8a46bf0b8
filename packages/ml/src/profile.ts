// What the history says is usual: counts of who changes what, where, when and to which values,
// and the detectors that read them. Each detector returns a p-value-like number in (0, 1]
// (small = unusual in its own context) and the evidence for a reason. See stats.ts for the
// estimates; no constant here is fitted to a data set.
import { logScale, type ChangeFeatures, type Leaf } from './features.js';
import { Counter, CounterTable, CyclicTable, NumberSample, type CyclicCounts } from './stats.js';

/** Half-width of the window in which changes on one host count as one burst: ±5 minutes. */
export const BURST_HALF_WINDOW_MS = 5 * 60_000;

/** How many peers (hosts that do the most similar things) each host has. */
const PEERS = 5;
/** A host is a peer of another when their change profiles are at least this similar (cosine). */
const PEER_SIMILARITY = 0.5;
/** A band needs at least this many values (else the wider context's band is used). */
const MIN_BAND = 8;

/** The evidence a detector gives for its reason (counters are summarised only when a reason is written). */
export type Evidence = Record<string, unknown>;

/** One detector's result: p in (0, 1] (small = unusual) and what it saw. */
export interface DetectorResult {
  p: number;
  evidence?: Evidence;
}

const sep = '\u0001';

/** Sorted counts with prefix sums, for tail sums over a counter. */
interface CounterIndex {
  counts: number[];
  prefix: number[];
}

const counterIndexes = new WeakMap<Counter, CounterIndex>();

function indexOf(counter: Counter): CounterIndex {
  let index = counterIndexes.get(counter);
  if (index === undefined || index.prefix[index.prefix.length - 1] !== counter.total) {
    const counts = [...counter.counts.values()].sort((a, b) => a - b);
    const prefix = new Array<number>(counts.length + 1);
    prefix[0] = 0;
    for (let i = 0; i < counts.length; i++) prefix[i + 1] = prefix[i]! + counts[i]!;
    index = { counts, prefix };
    counterIndexes.set(counter, index);
  }
  return index;
}

/**
 * The conditional tail p-value of a categorical value in a chain of contexts, most general
 * first. In a context with counts: a seen value's p is the mass of values seen at most as often,
 * plus the new-value mass T/(N+T); an unseen value's p is T/(N+T) times its p in the wider
 * context. A missing or empty context passes the wider p through.
 */
export function categoricalTail(chain: readonly (Counter | undefined)[], value: string): number {
  let p = 1;
  for (const counter of chain) {
    if (counter === undefined || counter.total === 0) continue;
    const t = counter.distinct;
    const c = counter.get(value);
    if (c === 0) {
      p = (t / (counter.total + t)) * p;
    } else {
      const { counts, prefix } = indexOf(counter);
      let lo = 0;
      let hi = counts.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (counts[mid]! <= c) lo = mid + 1;
        else hi = mid;
      }
      p = (prefix[lo]! + t) / (counter.total + t);
    }
  }
  return Math.min(1, p);
}

/**
 * The conditional tail p-value of a slot (hour, weekday) under a chain of cyclic counts, most
 * general first, Witten–Bell interpolated from a uniform base: the probability mass of the slots
 * at most as likely as this one.
 */
export function cyclicTail(
  chain: readonly (CyclicCounts | undefined)[],
  size: number,
  slot: number,
  kernel: number,
): { p: number; dist: number[] } {
  let dist = new Array<number>(size).fill(1 / size);
  for (const counts of chain) {
    if (counts === undefined || counts.total === 0) continue;
    const prev = dist;
    dist = prev.map((_, s) => counts.prob(s, (x) => prev[x]!, kernel));
  }
  const px = dist[slot]!;
  let p = 0;
  for (const q of dist) if (q <= px * (1 + 1e-9)) p += q;
  return { p: Math.min(1, p), dist };
}

/** Per-field numeric band, in log scale. */
interface Band {
  lo: number;
  hi: number;
  median: number;
  scale: number;
  n: number;
}

function bandOf(sample: NumberSample | undefined): Band | undefined {
  if (sample === undefined || sample.values.length < MIN_BAND) return undefined;
  const lo = sample.quantile(0);
  const hi = sample.quantile(1);
  const q1 = sample.quantile(0.25);
  const q3 = sample.quantile(0.75);
  const median = sample.quantile(0.5);
  // The spread of the values (log scale), at least 0.05 (≈ 5 %).
  const scale = Math.max(q3 - q1, (hi - lo) / 4, 0.05);
  return { lo, hi, median, scale, n: sample.seen };
}

/** The serialised profile (plain JSON). */
export interface ProfileJson {
  n: number;
  plugins: [string, number][];
  kinds: [string, [string, number][]][];
  templates: [string, [string, number][]][];
  ops: [string, [string, number][]][];
  actors: [string, number][];
  actorByKind: [string, [string, number][]][];
  actorByWhat: [string, [string, number][]][];
  whats: [string, number][];
  whatByHost: [string, [string, number][]][];
  hours: Record<TimeTable, [string, number[]][]>;
  days: Record<TimeTable, [string, number[]][]>;
  fieldsByTemplate: [string, [string, number][]][];
  valuesByField: [string, [string, number][]][];
  valuesByHostField: [string, [string, number][]][];
  numbers: [string, { values: number[]; seen: number; state: number }][];
  numbersByHost: [string, { values: number[]; seen: number; state: number }][];
  burstGlobal: { values: number[]; seen: number; state: number };
  burstByHost: [string, { values: number[]; seen: number; state: number }][];
  peers: [string, string[]][];
  hostSpan: [string, [number, number]][];
  lastSession: [string, number][];
}

/** At most this many distinct values are counted per field (the rest count as "many"). */
const MAX_VALUES_PER_FIELD = 2000;

/**
 * The history's counts. Add changes with {@link HistoryProfile.addAll} (in time order, a batch
 * at a time), then call {@link HistoryProfile.finalize} before scoring.
 */
export class HistoryProfile {
  n = 0;
  plugins = new Counter();
  kinds = new CounterTable();
  templates = new CounterTable();
  ops = new CounterTable();
  actors = new Counter();
  actorByKind = new CounterTable();
  actorByWhat = new CounterTable();
  whats = new Counter();
  whatByHost = new CounterTable();
  /** Hours of the day (UTC) by context. */
  hours = timeTables(24);
  days = timeTables(7);
  fieldsByTemplate = new CounterTable();
  valuesByField = new CounterTable();
  valuesByHostField = new CounterTable();
  numbers = new Map<string, NumberSample>();
  numbersByHost = new Map<string, NumberSample>();
  burstGlobal = new NumberSample(4096, 7);
  burstByHost = new Map<string, NumberSample>();
  peers = new Map<string, string[]>();
  /** The day each (context, actor) was last counted. */
  lastSession = new Map<string, number>();
  /** First and last change time of each host. */
  hostSpan = new Map<string, [number, number]>();
  private bands = new Map<string, Band | null>();

  /** Add a batch of changes (features), counting burst sizes within the batch. */
  addAll(batch: readonly ChangeFeatures[]): void {
    const bursts = burstCounts(batch);
    batch.forEach((f, i) => this.add(f, bursts[i]!));
    this.bands.clear();
  }

  private add(f: ChangeFeatures, burst: number): void {
    const e = f.event;
    this.n++;
    this.plugins.add(e.plugin);
    this.kinds.add(e.plugin, f.kind);
    this.templates.add(f.kind, f.template);
    this.ops.add(f.template, e.op);
    // Who: one observation per actor, context and day (a session), not per write — an
    // automation account that writes a thousand times a day is one decision, not a thousand.
    const day = Math.floor(f.clock.time / 86_400_000);
    for (const [table, context] of [
      [this.actorByKind, f.kind],
      [this.actorByWhat, f.what],
    ] as const) {
      const session = `${context}${sep}${e.actor}`;
      if (this.lastSession.get(session) === day) continue;
      this.lastSession.set(session, day);
      table.add(context, e.actor);
    }
    if (this.lastSession.get(e.actor) !== day) {
      this.lastSession.set(e.actor, day);
      this.actors.add(e.actor);
    }
    this.whats.add(f.what);
    this.whatByHost.add(e.host, f.what);
    const span = this.hostSpan.get(e.host);
    if (span === undefined) this.hostSpan.set(e.host, [f.clock.time, f.clock.time]);
    else {
      if (f.clock.time < span[0]) span[0] = f.clock.time;
      if (f.clock.time > span[1]) span[1] = f.clock.time;
    }
    for (const [table, key] of timeContexts(f)) {
      this.hours[table].add(key, f.clock.utcHour);
      this.days[table].add(key, f.clock.utcWeekday);
    }
    const fields = new Set<string>();
    for (const leaf of f.leaves) {
      fields.add(leaf.field);
      const value = String(leaf.value);
      const byField = this.valuesByField.get(leaf.field);
      if (byField === undefined || byField.distinct < MAX_VALUES_PER_FIELD || byField.get(value) > 0)
        this.valuesByField.add(leaf.field, value);
      const hostField = e.host + sep + leaf.field;
      const byHost = this.valuesByHostField.get(hostField);
      if (byHost === undefined || byHost.distinct < MAX_VALUES_PER_FIELD || byHost.get(value) > 0)
        this.valuesByHostField.add(hostField, value);
      if (typeof leaf.value === 'number') {
        const x = logScale(leaf.value);
        sample(this.numbers, leaf.field).add(x);
        sample(this.numbersByHost, hostField).add(x);
      }
    }
    for (const field of fields) this.fieldsByTemplate.add(f.template, field);
    this.burstGlobal.add(burst);
    sample(this.burstByHost, e.host, 512).add(burst);
  }

  /** Recompute what depends on all counts: each host's peers. */
  finalize(): void {
    this.bands.clear();
    this.hostsWithCache.clear();
    const hosts = [...this.whatByHost.table.keys()];
    const vectors = hosts.map((h) => {
      const counter = this.whatByHost.get(h)!;
      const v = new Map<string, number>();
      let norm = 0;
      for (const [what, c] of counter.counts) {
        const w = Math.log1p(c);
        v.set(what, w);
        norm += w * w;
      }
      return { v, norm: Math.sqrt(norm) };
    });
    this.peers.clear();
    for (let i = 0; i < hosts.length; i++) {
      const sims: [string, number][] = [];
      const a = vectors[i]!;
      for (let j = 0; j < hosts.length; j++) {
        if (i === j) continue;
        const b = vectors[j]!;
        let dot = 0;
        const [small, large] = a.v.size < b.v.size ? [a.v, b.v] : [b.v, a.v];
        for (const [k, w] of small) dot += w * (large.get(k) ?? 0);
        const sim = a.norm === 0 || b.norm === 0 ? 0 : dot / (a.norm * b.norm);
        if (sim >= PEER_SIMILARITY) sims.push([hosts[j]!, sim]);
      }
      sims.sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
      this.peers.set(
        hosts[i]!,
        sims.slice(0, PEERS).map(([h]) => h),
      );
    }
  }

  /** How new the kind of change is: plugin, collection, resource, op — each in its context. */
  what(f: ChangeFeatures): DetectorResult {
    const e = f.event;
    const p =
      categoricalTail([this.plugins], e.plugin) *
      categoricalTail([this.kinds.get(e.plugin)], f.kind) *
      categoricalTail([this.templates.get(f.kind)], f.template) *
      categoricalTail([this.ops.get(f.template)], e.op);
    return {
      p,
      evidence: { seen: this.whats.get(f.what), resourceSeen: this.ops.get(f.template)?.total ?? 0 },
    };
  }

  /** Whether this actor makes this change: fleet-wide actors → actors of the collection → of this change. */
  actor(f: ChangeFeatures): DetectorResult {
    const e = f.event;
    const p = categoricalTail(
      [this.actors, this.actorByKind.get(f.kind), this.actorByWhat.get(f.what)],
      e.actor,
    );
    return { p, evidence: { usual: this.actorByWhat.get(f.what), actorSeen: this.actors.get(e.actor) } };
  }

  /**
   * Whether this host makes this change. 1 when it made it before. Otherwise the posterior
   * chance that the change belongs to this host's repertoire: the prior from its peers (the hosts
   * that change the most similar things), with the fleet as theirs — (peers that made it + f) /
   * (peers + 1), f the share of hosts that made it — times the chance of never having seen it in
   * this host's history if it did belong: exp(−rate × days), the rate being how often the hosts
   * that make it do (per day). Frequent changes missing from a long history are strong evidence;
   * rare ones are not. Volume-free; a host never seen is not judged.
   */
  host(f: ChangeFeatures): DetectorResult {
    const host = f.event.host;
    const own = this.whatByHost.get(host);
    const peers = this.peers.get(host) ?? [];
    const stats = this.hostsWith(f.what);
    const onPeers = peers.filter((h) => (this.whatByHost.get(h)?.get(f.what) ?? 0) > 0).length;
    const evidence = {
      onHost: own?.get(f.what) ?? 0,
      onPeers,
      peers,
      fleet: stats.hosts,
      hosts: this.whatByHost.table.size,
      perDay: stats.perDay,
      knownHost: own !== undefined,
    };
    // Made here before, a host never seen, or a change no host made (the `what` detector's case).
    if (own === undefined || own.get(f.what) > 0 || stats.hosts === 0) return { p: 1, evidence };
    const share = stats.hosts / Math.max(1, this.whatByHost.table.size);
    const prior = (onPeers + share) / (peers.length + 1);
    const unseen = Math.exp(-stats.perDay * this.daysOf(host));
    return { p: (prior * unseen) / (prior * unseen + 1 - prior), evidence };
  }

  /** How many days of history a host has (at least one). */
  private daysOf(host: string): number {
    const span = this.hostSpan.get(host);
    return span === undefined ? 1 : Math.max(1, (span[1] - span[0]) / 86_400_000);
  }

  private hostsWithCache = new Map<string, { hosts: number; perDay: number }>();

  /** How many hosts made this change, and how often per day they make it. */
  private hostsWith(what: string): { hosts: number; perDay: number } {
    let n = this.hostsWithCache.get(what);
    if (n === undefined) {
      let hosts = 0;
      let count = 0;
      let days = 0;
      for (const [host, counter] of this.whatByHost.table) {
        const c = counter.get(what);
        if (c === 0) continue;
        hosts++;
        count += c;
        days += this.daysOf(host);
      }
      n = { hosts, perDay: days === 0 ? 0 : count / days };
      this.hostsWithCache.set(what, n);
    }
    return n;
  }

  /**
   * The hour of the day (UTC: people keep their hours wherever the host is, and a host's local
   * jobs keep their UTC hour too), along the chain: the fleet, the actor, the actor making this
   * change, the actor on this host.
   */
  hour(f: ChangeFeatures): DetectorResult {
    return this.time(f, this.hours, 24, 0.5, f.clock.utcHour, f.clock.hour, 'hour');
  }

  /** The day of the week, along the same chain as {@link HistoryProfile.hour}. */
  day(f: ChangeFeatures): DetectorResult {
    return this.time(f, this.days, 7, 0, f.clock.utcWeekday, f.clock.weekday, 'day');
  }

  private time(
    f: ChangeFeatures,
    tables: Record<TimeTable, CyclicTable>,
    size: number,
    kernel: number,
    utcSlot: number,
    localSlot: number,
    name: 'hour' | 'day',
  ): DetectorResult {
    const keys = new Map(timeContexts(f));
    const get = (t: TimeTable) => tables[t].get(keys.get(t)!);
    const { p, dist } = cyclicTail(
      [get('utc'), get('actor'), get('actorWhat'), get('hostActor')],
      size,
      utcSlot,
      kernel,
    );
    // Show the usual slots in the host's clock.
    const offset = localSlot - utcSlot;
    const usual = usualSlots(dist)
      .map((s) => (((s + offset) % size) + size) % size)
      .sort((a, b) => a - b);
    return { p, evidence: { [name]: localSlot, usual } };
  }

  private band(key: string, samples: Map<string, NumberSample>): Band | undefined {
    let b = this.bands.get(key);
    if (b === undefined) {
      b = bandOf(samples.get(key)) ?? null;
      this.bands.set(key, b);
    }
    return b ?? undefined;
  }

  /**
   * The values: for each leaf, a new field for this resource, a value new or rare for the field
   * (on this host, then fleet-wide), and a number outside the band seen (in log scale, as
   * multiples of the band's spread). The smallest p over the leaves, Šidák-corrected for their
   * number.
   */
  value(f: ChangeFeatures): DetectorResult {
    if (f.leaves.length === 0) return { p: 1 };
    const host = f.event.host;
    let best = 1;
    let worst: Evidence | undefined;
    const fieldCounter = this.fieldsByTemplate.get(f.template);
    const seenFields = new Set<string>();
    for (const leaf of f.leaves) {
      let p = 1;
      let evidence: Evidence | undefined;
      if (!seenFields.has(leaf.field)) {
        seenFields.add(leaf.field);
        const pf = categoricalTail([fieldCounter], leaf.field);
        if (pf < p) {
          p = pf;
          evidence = { kind: 'field', field: leaf.field };
        }
      }
      const pv = this.valueTail(host, leaf);
      if (pv.p < p) {
        p = pv.p;
        evidence = pv.evidence;
      }
      if (p < best) {
        best = p;
        worst = evidence;
      }
    }
    const m = f.leaves.length;
    // Šidák: the chance that the least likely of m leaves is this unlikely.
    const p = m === 1 ? best : -Math.expm1(m * Math.log1p(-Math.min(best, 1 - 1e-12)));
    return worst === undefined ? { p } : { p, evidence: worst };
  }

  private valueTail(host: string, leaf: Leaf): { p: number; evidence?: Evidence } {
    const hostField = host + sep + leaf.field;
    const value = String(leaf.value);
    const fieldValues = this.valuesByField.get(leaf.field);
    const hostValues = this.valuesByHostField.get(hostField);
    let p = categoricalTail([fieldValues, hostValues], value);
    let evidence: Evidence = {
      kind: 'value',
      field: leaf.field,
      value: leaf.value,
      usual: hostValues ?? fieldValues,
    };
    if (typeof leaf.value === 'number') {
      const band = this.band(hostField, this.numbersByHost) ?? this.band(leaf.field, this.numbers);
      if (band !== undefined) {
        const x = logScale(leaf.value);
        const outside = Math.max(0, x - band.hi, band.lo - x) / band.scale;
        // A value inside the band seen is not unusual as a number (whatever its count says).
        p = outside === 0 ? Math.max(p, 0.5) : Math.min(p, Math.exp(-outside));
        evidence = {
          kind: 'band',
          field: leaf.field,
          value: leaf.value,
          band: [
            Math.sign(band.lo) * Math.expm1(Math.abs(band.lo)),
            Math.sign(band.hi) * Math.expm1(Math.abs(band.hi)),
          ],
          median: Math.sign(band.median) * Math.expm1(Math.abs(band.median)),
          outside,
        };
      }
    }
    return { p, evidence };
  }

  /** How many changes a host makes within ±5 minutes, against what this host (or the fleet) did. */
  burst(
    host: string,
    count: number,
    tail: (host: string) => { p: (count: number) => number; usual: number },
  ): DetectorResult {
    const t = tail(host);
    return { p: t.p(count), evidence: { count, usual: t.usual } };
  }

  toJSON(): ProfileJson {
    const samples = (m: Map<string, NumberSample>) =>
      [...m.entries()].map(([k, s]) => [k, s.toJSON()] as [string, ReturnType<NumberSample['toJSON']>]);
    return {
      n: this.n,
      plugins: this.plugins.toJSON(),
      kinds: this.kinds.toJSON(),
      templates: this.templates.toJSON(),
      ops: this.ops.toJSON(),
      actors: this.actors.toJSON(),
      actorByKind: this.actorByKind.toJSON(),
      actorByWhat: this.actorByWhat.toJSON(),
      whats: this.whats.toJSON(),
      whatByHost: this.whatByHost.toJSON(),
      hours: mapTables(this.hours, (t) => t.toJSON()),
      days: mapTables(this.days, (t) => t.toJSON()),
      fieldsByTemplate: this.fieldsByTemplate.toJSON(),
      valuesByField: this.valuesByField.toJSON(),
      valuesByHostField: this.valuesByHostField.toJSON(),
      numbers: samples(this.numbers),
      numbersByHost: samples(this.numbersByHost),
      burstGlobal: this.burstGlobal.toJSON(),
      burstByHost: samples(this.burstByHost),
      peers: [...this.peers.entries()],
      hostSpan: [...this.hostSpan.entries()],
      lastSession: [...this.lastSession.entries()],
    };
  }

  static fromJSON(json: ProfileJson): HistoryProfile {
    const p = new HistoryProfile();
    p.n = json.n;
    p.plugins = Counter.fromJSON(json.plugins);
    p.kinds = CounterTable.fromJSON(json.kinds);
    p.templates = CounterTable.fromJSON(json.templates);
    p.ops = CounterTable.fromJSON(json.ops);
    p.actors = Counter.fromJSON(json.actors);
    p.actorByKind = CounterTable.fromJSON(json.actorByKind);
    p.actorByWhat = CounterTable.fromJSON(json.actorByWhat);
    p.whats = Counter.fromJSON(json.whats);
    p.whatByHost = CounterTable.fromJSON(json.whatByHost);
    p.hours = mapTables(json.hours, (t) => CyclicTable.fromJSON(24, t));
    p.days = mapTables(json.days, (t) => CyclicTable.fromJSON(7, t));
    p.fieldsByTemplate = CounterTable.fromJSON(json.fieldsByTemplate);
    p.valuesByField = CounterTable.fromJSON(json.valuesByField);
    p.valuesByHostField = CounterTable.fromJSON(json.valuesByHostField);
    p.numbers = new Map(json.numbers.map(([k, s]) => [k, NumberSample.fromJSON(s)]));
    p.numbersByHost = new Map(json.numbersByHost.map(([k, s]) => [k, NumberSample.fromJSON(s)]));
    p.burstGlobal = NumberSample.fromJSON(json.burstGlobal, 4096);
    p.burstByHost = new Map(json.burstByHost.map(([k, s]) => [k, NumberSample.fromJSON(s, 512)]));
    p.peers = new Map(json.peers);
    p.hostSpan = new Map(json.hostSpan);
    p.lastSession = new Map(json.lastSession);
    return p;
  }
}

/** The contexts of the time profiles. */
const TIME_TABLES = ['utc', 'actor', 'actorWhat', 'hostActor'] as const;
type TimeTable = (typeof TIME_TABLES)[number];

function timeTables(size: number): Record<TimeTable, CyclicTable> {
  return mapTables(
    Object.fromEntries(TIME_TABLES.map((t) => [t, null])) as Record<TimeTable, null>,
    () => new CyclicTable(size),
  );
}

function mapTables<A, B>(tables: Record<TimeTable, A>, fn: (a: A) => B): Record<TimeTable, B> {
  return Object.fromEntries(TIME_TABLES.map((t) => [t, fn(tables[t])])) as Record<TimeTable, B>;
}

/** Each time table and the context key of a change in it. */
function timeContexts(f: ChangeFeatures): [TimeTable, string][] {
  const e = f.event;
  return [
    ['utc', ''],
    ['actor', e.actor],
    ['actorWhat', e.actor + sep + f.what],
    ['hostActor', e.host + sep + e.actor],
  ];
}

function sample(map: Map<string, NumberSample>, key: string, capacity = 256): NumberSample {
  let s = map.get(key);
  if (s === undefined) {
    s = new NumberSample(capacity, map.size + 1);
    map.set(key, s);
  }
  return s;
}

/** The slots that hold most of a distribution (at least 80 % of it), in order. */
function usualSlots(dist: readonly number[]): number[] {
  const order = dist.map((p, s) => [s, p] as const).sort((a, b) => b[1] - a[1]);
  const out: number[] = [];
  let mass = 0;
  for (const [s, p] of order) {
    if (mass >= 0.8) break;
    out.push(s);
    mass += p;
  }
  return out.sort((a, b) => a - b);
}

/**
 * For each change of a batch, how many changes of the same batch hit the same host within
 * ±5 minutes of it (itself included).
 */
export function burstCounts(batch: readonly ChangeFeatures[]): number[] {
  const byHost = new Map<string, number[]>();
  batch.forEach((f, i) => {
    let list = byHost.get(f.event.host);
    if (list === undefined) byHost.set(f.event.host, (list = []));
    list.push(i);
  });
  const out = new Array<number>(batch.length).fill(1);
  for (const list of byHost.values()) {
    list.sort((a, b) => batch[a]!.clock.time - batch[b]!.clock.time);
    let lo = 0;
    let hi = 0;
    for (let k = 0; k < list.length; k++) {
      const t = batch[list[k]!]!.clock.time;
      while (batch[list[lo]!]!.clock.time < t - BURST_HALF_WINDOW_MS) lo++;
      while (hi + 1 < list.length && batch[list[hi + 1]!]!.clock.time <= t + BURST_HALF_WINDOW_MS) hi++;
      if (hi < k) hi = k;
      out[list[k]!] = hi - lo + 1;
    }
  }
  return out;
}
