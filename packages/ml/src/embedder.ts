import type { Json } from './events.js';
import { flatten, logScale, type ChangeFeatures } from './features.js';

/**
 * Turns change features and state snapshots into fixed-size vectors. Vectors are compared by
 * cosine similarity (the index normalises them). Implementations must be deterministic: the same
 * input gives the same vector in every process, so a saved index stays valid.
 */
export interface Embedder {
  /** Identifies the embedder and its version; a model records it and refuses another. */
  readonly name: string;
  /** Vector dimension (384 for the default). */
  readonly dim: number;
  /** The vector of one change. */
  embedChange(features: ChangeFeatures): Float32Array;
  /** The vector of one observed-state snapshot (a state document or any JSON). */
  embedState(state: Json): Float32Array;
}

/** The default dimension, as the design names it. */
export const DEFAULT_DIM = 384;

/** FNV-1a, 32 bit, with a final avalanche (murmur3's fmix32). */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A host name with its numbers collapsed (`web-03` → `web-#`): a weak hint of its role. */
export function hostStem(host: string): string {
  return host.toLowerCase().replace(/\d+/g, '#');
}

const DENSE = 4;

/**
 * The default embedder: signed feature hashing of the featurizer's tokens (plugin, collection,
 * resource template and tokens, op, actor, host, hour, weekday, values and their pairings) into
 * 380 dimensions, plus 4 dense dimensions (hour and weekday on the circle). Needs no downloaded
 * weights; deterministic across processes.
 */
export class HashingEmbedder implements Embedder {
  readonly name = 'hashing-v1';
  readonly dim: number;

  constructor(dim = DEFAULT_DIM) {
    if (!Number.isInteger(dim) || dim < 16)
      throw new RangeError(`dimension must be an integer ≥ 16, got ${dim}`);
    this.dim = dim;
  }

  private add(v: Float32Array, token: string, weight: number): void {
    const h = hash32(token);
    const slots = this.dim - DENSE;
    const i = h % slots;
    v[i]! += (h & 0x80000000) !== 0 ? -weight : weight;
  }

  embedChange(f: ChangeFeatures): Float32Array {
    const v = new Float32Array(this.dim);
    const e = f.event;
    const stem = hostStem(e.host);
    const hour = f.clock.hour;
    this.add(v, `p:${e.plugin}`, 1);
    this.add(v, `k:${f.kind}`, 1);
    this.add(v, `t:${f.template}`, 1.5);
    for (const token of f.tokens) this.add(v, `r:${token}`, 0.4);
    this.add(v, `o:${e.op}`, 1);
    this.add(v, `w:${f.what}`, 1);
    this.add(v, `a:${e.actor}`, 1.5);
    this.add(v, `at:${e.actor}|${f.template}`, 1);
    this.add(v, `h:${e.host}`, 0.8);
    this.add(v, `hs:${stem}`, 0.6);
    this.add(v, `ht:${stem}|${f.template}`, 1);
    this.add(v, `hr:${hour}`, 0.8);
    this.add(v, `hr:${(hour + 1) % 24}`, 0.3);
    this.add(v, `hr:${(hour + 23) % 24}`, 0.3);
    this.add(v, `d:${f.clock.weekday}`, 0.8);
    this.add(v, `dt:${f.clock.weekday}|${f.template}`, 0.8);
    this.add(v, `ah:${e.actor}|${Math.floor(f.clock.utcHour / 4)}`, 0.8);
    this.add(v, `hd:${e.host}|${f.clock.weekday}`, 0.5);
    const leafWeight = f.leaves.length === 0 ? 0 : Math.min(1, 3 / Math.sqrt(f.leaves.length));
    for (const leaf of f.leaves) {
      this.add(v, `f:${leaf.field}`, 0.3 * leafWeight);
      if (typeof leaf.value === 'number') {
        this.add(v, `n:${leaf.field}~${Math.round(logScale(leaf.value) * 2)}`, 0.6 * leafWeight);
      } else {
        this.add(v, `v:${leaf.field}=${leaf.value}`, 0.6 * leafWeight);
      }
    }
    const base = this.dim - DENSE;
    const hourAngle = (2 * Math.PI * f.clock.hourOfDay) / 24;
    const dayAngle = (2 * Math.PI * f.clock.weekday) / 7;
    v[base] = 0.7 * Math.cos(hourAngle);
    v[base + 1] = 0.7 * Math.sin(hourAngle);
    v[base + 2] = 0.5 * Math.cos(dayAngle);
    v[base + 3] = 0.5 * Math.sin(dayAngle);
    return normalize(v);
  }

  embedState(state: Json): Float32Array {
    const v = new Float32Array(this.dim);
    const leaves: [string, number | string][] = [];
    flatten(state, '', leaves, 200_000);
    for (const [path, value] of leaves) {
      this.add(v, `s:${path}`, 0.5);
      this.add(v, `s:${path}=${String(value)}`, 1);
    }
    return normalize(v);
  }
}

/** Scale a vector to unit length in place (a zero vector stays zero). */
export function normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!;
  if (sum === 0) return v;
  const inv = 1 / Math.sqrt(sum);
  for (let i = 0; i < v.length; i++) v[i]! *= inv;
  return v;
}

/** Cosine similarity of two vectors. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}
