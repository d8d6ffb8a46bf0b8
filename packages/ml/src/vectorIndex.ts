import { createRequire } from 'node:module';
import type * as Hnswlib from 'hnswlib-node';

const require = createRequire(import.meta.url);
let hnswlib: typeof Hnswlib | undefined;

/** hnswlib-node, loaded on first use (it is a native addon). */
function lib(): typeof Hnswlib {
  hnswlib ??= require('hnswlib-node') as typeof Hnswlib;
  return hnswlib;
}

/** A nearest neighbour: the label it was added with and its cosine similarity to the query. */
export interface Hit {
  label: number;
  similarity: number;
}

/** HNSW construction parameters (hnswlib's names). */
export interface HnswParams {
  /** Links per node (default 16). */
  m?: number;
  /** Candidate list size while building (default 100). */
  efConstruction?: number;
  /** Candidate list size while searching (default 64; at least k). */
  ef?: number;
  /** Seed of the level generator (default 100), so a build is reproducible. */
  seed?: number;
}

/** A cosine nearest-neighbour index. */
export interface NearestIndex {
  readonly dim: number;
  readonly size: number;
  add(vector: Float32Array, label: number): void;
  search(vector: Float32Array, k: number): Hit[];
}

/**
 * A cosine HNSW index (hnswlib-node) that grows as vectors are added, persisted to one file.
 * hnswlib's cosine distance is `1 − similarity`.
 */
export class HnswIndex implements NearestIndex {
  private readonly index: Hnswlib.HierarchicalNSW;
  private readonly ef: number;

  private constructor(
    readonly dim: number,
    index: Hnswlib.HierarchicalNSW,
    ef: number,
  ) {
    this.index = index;
    this.ef = ef;
    this.index.setEf(ef);
  }

  /** An empty index with room for `capacity` vectors (it grows beyond). */
  static create(dim: number, capacity: number, params: HnswParams = {}): HnswIndex {
    const index = new (lib().HierarchicalNSW)('cosine', dim);
    index.initIndex({
      maxElements: Math.max(16, capacity),
      m: params.m ?? 16,
      efConstruction: params.efConstruction ?? 100,
      randomSeed: params.seed ?? 100,
    });
    return new HnswIndex(dim, index, params.ef ?? 64);
  }

  /** Read an index written by {@link HnswIndex.save}. */
  static load(file: string, dim: number, ef = 64): HnswIndex {
    const index = new (lib().HierarchicalNSW)('cosine', dim);
    index.readIndexSync(file);
    return new HnswIndex(dim, index, ef);
  }

  get size(): number {
    return this.index.getCurrentCount();
  }

  add(vector: Float32Array, label: number): void {
    if (this.index.getCurrentCount() >= this.index.getMaxElements()) {
      this.index.resizeIndex(Math.ceil(this.index.getMaxElements() * 1.5) + 16);
    }
    this.index.addPoint(Array.from(vector), label);
  }

  search(vector: Float32Array, k: number): Hit[] {
    const n = Math.min(k, this.size);
    if (n === 0) return [];
    if (this.ef < n) this.index.setEf(n);
    const result = this.index.searchKnn(Array.from(vector), n);
    return result.neighbors.map((label, i) => ({ label, similarity: 1 - result.distances[i]! }));
  }

  save(file: string): void {
    this.index.writeIndexSync(file);
  }
}

/**
 * Exact cosine search over every vector: the reference HNSW is measured against, and fine for
 * small collections (a few thousand state snapshots).
 */
export class BruteForceIndex implements NearestIndex {
  private data: Float32Array;
  private labels: number[] = [];

  constructor(
    readonly dim: number,
    capacity = 1024,
  ) {
    this.data = new Float32Array(dim * Math.max(1, capacity));
  }

  get size(): number {
    return this.labels.length;
  }

  add(vector: Float32Array, label: number): void {
    const n = this.labels.length;
    if ((n + 1) * this.dim > this.data.length) {
      const grown = new Float32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    let norm = 0;
    for (let i = 0; i < this.dim; i++) norm += vector[i]! * vector[i]!;
    const inv = norm === 0 ? 0 : 1 / Math.sqrt(norm);
    for (let i = 0; i < this.dim; i++) this.data[n * this.dim + i] = vector[i]! * inv;
    this.labels.push(label);
  }

  search(vector: Float32Array, k: number): Hit[] {
    let norm = 0;
    for (let i = 0; i < this.dim; i++) norm += vector[i]! * vector[i]!;
    const inv = norm === 0 ? 0 : 1 / Math.sqrt(norm);
    const n = this.labels.length;
    const top: Hit[] = [];
    const data = this.data;
    const dim = this.dim;
    for (let j = 0; j < n; j++) {
      let dot = 0;
      const base = j * dim;
      for (let i = 0; i < dim; i++) dot += data[base + i]! * vector[i]!;
      const similarity = dot * inv;
      if (top.length < k || similarity > top[top.length - 1]!.similarity) {
        let pos = top.length;
        while (pos > 0 && top[pos - 1]!.similarity < similarity) pos--;
        top.splice(pos, 0, { label: this.labels[j]!, similarity });
        if (top.length > k) top.pop();
      }
    }
    return top;
  }
}
