import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { OpdbusError, silentLogger, type Logger } from '@opdbus/core';
import {
  autoencoderFromJSON,
  autoencoderToJSON,
  reconstructionError,
  trainAutoencoder,
  type AutoencoderOptions,
  type AutoencoderWeights,
} from './autoencoder.js';
import type { BackendName } from './backend.js';
import { fitTail, tailProbability, tailSurprise, type TailModel } from './calibration.js';
import { HashingEmbedder, type Embedder } from './embedder.js';
import type { ChangeEvent, Json } from './events.js';
import { reasonText } from './explain.js';
import { featurize, type ChangeFeatures } from './features.js';
import {
  burstCounts,
  HistoryProfile,
  type DetectorResult,
  type Evidence,
  type ProfileJson,
} from './profile.js';
import { HnswIndex, type HnswParams } from './vectorIndex.js';

/** The detectors whose signals are combined into one score. */
export const DETECTORS = [
  'neighbour',
  'what',
  'actor',
  'host',
  'hour',
  'day',
  'value',
  'burst',
  'autoencoder',
] as const;

/** A detector's name. */
export type DetectorName = (typeof DETECTORS)[number];

/** The model directory format this version reads and writes. */
export const MODEL_FORMAT = 'opdbus-anomaly-model';
/** Bumped whenever the files of a model directory change meaning. */
export const MODEL_FORMAT_VERSION = 1;

/** The seeds' similarity rule: a change or state whose nearest known one is less similar than this is unusual. */
export const DEFAULT_SIMILARITY_THRESHOLD = 0.85;
/** Default decision threshold on the calibrated score (≈ 1 % of the history's changes are above it). */
export const DEFAULT_THRESHOLD = 0.99;
/** Neighbours searched per change (the nearest few are returned). */
const K = 10;
/** Calibrated p-value at or below which a detector's reason is given. */
const REASON_P = 0.01;

/** A past change, as returned with a score. */
export interface Neighbour {
  similarity: number;
  at: string;
  host: string;
  actor: string;
  plugin: string;
  resource: string;
  op: ChangeEvent['op'];
}

/** One detector's contribution: its raw value and calibrated upper-tail p-value. */
export interface Signal {
  value: number;
  p: number;
}

/** The score of one change. */
export interface AnomalyScore {
  /** Calibrated score in [0, 1]: the fraction of the history's own (held-out) changes that scored lower. */
  score: number;
  /** `score ≥ threshold`. */
  anomalous: boolean;
  /** Why, most telling first (empty when nothing stands out). */
  reasons: string[];
  /** The nearest past changes (at most 3), most similar first. */
  neighbours: Neighbour[];
  /** Each detector's signal (for metrics and dashboards). */
  signals: Record<DetectorName, Signal>;
}

/** A snapshot of a host's observed state, for {@link AnomalyModel.scoreState}. */
export interface StateSnapshot {
  /** Identifies the snapshot (a ledger snapshot id); default: its position. */
  id?: string;
  at?: string;
  host?: string;
  /** The observed state (a state document or any JSON). */
  state: Json;
}

/** A snapshot in the model's state history. */
export interface KnownState {
  id: string;
  at: string | null;
  host: string | null;
  /** Whether it was flagged when it was added (flagged states are never "known good"). */
  flagged: boolean;
}

/** The score of one state snapshot. */
export interface StateScore {
  /** Cosine similarity to the nearest known-good state (0 when there is none). */
  similarity: number;
  /** `similarity < threshold`. */
  anomalous: boolean;
  threshold: number;
  /** The nearest known-good states (at most 3). */
  nearest: (KnownState & { similarity: number })[];
  /** The latest state that was not flagged: what a rollback restores. */
  lastKnownGood: KnownState | null;
  reasons: string[];
}

/** Progress of a long step. */
export interface TrainProgress {
  phase: 'featurize' | 'profile' | 'embed' | 'index' | 'autoencoder' | 'calibrate' | 'states';
  done: number;
  total: number;
}

/** Options of {@link trainModel}. */
export interface TrainOptions {
  /** Default: {@link HashingEmbedder} (384 dimensions). */
  embedder?: Embedder;
  /** The latest fraction of the history scored against the rest to calibrate (default 0.2). */
  holdoutFraction?: number;
  /** Autoencoder options, or `false` to train without it. */
  autoencoder?: AutoencoderOptions | false;
  hnsw?: HnswParams;
  /** Decision threshold on the score (default 0.99). */
  threshold?: number;
  /** Similarity threshold of the state scorer (default 0.85). */
  stateThreshold?: number;
  /** State snapshots of the same history, oldest first, to score states against. */
  states?: StateSnapshot[];
  onProgress?: (progress: TrainProgress) => void;
  logger?: Logger;
}

/** Options of {@link loadModel}. */
export interface LoadOptions {
  /** Must match the one the model was trained with (default: {@link HashingEmbedder}). */
  embedder?: Embedder;
  logger?: Logger;
}

/** Options of {@link AnomalyModel.score}. */
export interface ScoreOptions {
  /** Override the model's decision threshold. */
  threshold?: number;
  /** How many neighbours to return (default 3). */
  neighbours?: number;
  /**
   * Detectors left out of the score (their signal still reported): e.g. `['actor']` for drift,
   * whose actor is never known (the host was changed outside op-dbus).
   */
  ignore?: readonly DetectorName[];
}

interface ModelJson {
  format: string;
  formatVersion: number;
  createdAt: string;
  embedder: { name: string; dim: number };
  threshold: number;
  stateThreshold: number;
  similarityThreshold: number;
  history: { events: number; from: string | null; to: string | null; hosts: number; actors: number };
  calibration: { detectors: Record<DetectorName, TailModel>; combined: TailModel; holdout: number };
  autoencoder: { backend: BackendName; loss: number; trainedOn: number } | null;
  hnsw: HnswParams;
  states: number;
}

type Meta = [
  at: string,
  host: string,
  actor: string,
  plugin: string,
  resource: string,
  op: ChangeEvent['op'],
];

/** Lower bounds of each detector's tail scale, in the units of its raw value. */
const MIN_SCALE: Record<DetectorName, number> = {
  neighbour: 0.01,
  what: 0.5,
  actor: 0.5,
  host: 0.5,
  hour: 0.5,
  day: 0.5,
  value: 0.5,
  burst: 0.5,
  autoencoder: 1e-5,
};

interface ModelParts {
  json: ModelJson;
  embedder: Embedder;
  profile: HistoryProfile;
  index: HnswIndex;
  meta: Meta[];
  autoencoder: AutoencoderWeights | null;
  stateIndex: HnswIndex | null;
  states: KnownState[];
  logger: Logger;
}

/**
 * A trained anomaly model: load it once, then score batches of changes synchronously. Train
 * with {@link trainModel}, persist with {@link AnomalyModel.save}, read with {@link loadModel}.
 */
export class AnomalyModel {
  private readonly json: ModelJson;
  readonly embedder: Embedder;
  private readonly profile: HistoryProfile;
  private readonly index: HnswIndex;
  private readonly meta: Meta[];
  private readonly autoencoder: AutoencoderWeights | null;
  private stateIndex: HnswIndex | null;
  private readonly states: KnownState[];
  private readonly logger: Logger;
  private readonly burstTails = new Map<string, { p: (count: number) => number; usual: number }>();

  /** @internal Use {@link trainModel} or {@link loadModel}. */
  constructor(parts: ModelParts) {
    this.json = parts.json;
    this.embedder = parts.embedder;
    this.profile = parts.profile;
    this.index = parts.index;
    this.meta = parts.meta;
    this.autoencoder = parts.autoencoder;
    this.stateIndex = parts.stateIndex;
    this.states = parts.states;
    this.logger = parts.logger;
  }

  /** The decision threshold on the score. */
  get threshold(): number {
    return this.json.threshold;
  }

  /** What the model was trained on, and how. */
  info(): {
    formatVersion: number;
    createdAt: string;
    embedder: { name: string; dim: number };
    history: ModelJson['history'];
    indexed: number;
    threshold: number;
    stateThreshold: number;
    states: number;
    calibrationSize: number;
    autoencoder: ModelJson['autoencoder'];
  } {
    return {
      formatVersion: this.json.formatVersion,
      createdAt: this.json.createdAt,
      embedder: this.json.embedder,
      history: this.json.history,
      indexed: this.index.size,
      threshold: this.json.threshold,
      stateThreshold: this.json.stateThreshold,
      states: this.states.length,
      calibrationSize: this.json.calibration.holdout,
      autoencoder: this.json.autoencoder,
    };
  }

  /**
   * Forget what was derived from the profile (after it changed).
   * @internal
   */
  refresh(): void {
    this.burstTails.clear();
  }

  private burstTail(host: string): { p: (count: number) => number; usual: number } {
    let t = this.burstTails.get(host);
    if (t === undefined) {
      const own = this.profile.burstByHost.get(host);
      const sample = own !== undefined && own.seen >= 50 ? own : this.profile.burstGlobal;
      const tail = fitTail(sample.values, 1);
      t = { p: (count: number) => tailProbability(tail, count - 0.5), usual: sample.quantile(0.99) };
      this.burstTails.set(host, t);
    }
    return t;
  }

  /**
   * Raw detector values (−ln of the profile detectors' p, the neighbour distance, the AE error).
   * @internal
   */
  rawSignals(
    features: readonly ChangeFeatures[],
    vectors?: readonly Float32Array[],
  ): {
    values: Record<DetectorName, number>[];
    evidence: Record<DetectorName, Evidence | undefined>[];
    hits: { label: number; similarity: number }[][];
  } {
    const bursts = burstCounts(features);
    const values: Record<DetectorName, number>[] = [];
    const evidence: Record<DetectorName, Evidence | undefined>[] = [];
    const hits: { label: number; similarity: number }[][] = [];
    features.forEach((f, i) => {
      const v = vectors?.[i] ?? this.embedder.embedChange(f);
      const h = this.index.search(v, K);
      hits.push(h);
      const nearest = h[0]?.similarity ?? 0;
      const ae = this.autoencoder === null ? 0 : reconstructionError(this.autoencoder, v);
      const results: Record<Exclude<DetectorName, 'neighbour' | 'autoencoder'>, DetectorResult> = {
        what: this.profile.what(f),
        actor: this.profile.actor(f),
        host: this.profile.host(f),
        hour: this.profile.hour(f),
        day: this.profile.day(f),
        value: this.profile.value(f),
        burst: this.profile.burst(f.event.host, bursts[i]!, (host) => this.burstTail(host)),
      };
      const surprise = (r: DetectorResult): number => -Math.log(Math.max(r.p, 1e-300));
      values.push({
        neighbour: 1 - nearest,
        what: surprise(results.what),
        actor: surprise(results.actor),
        host: surprise(results.host),
        hour: surprise(results.hour),
        day: surprise(results.day),
        value: surprise(results.value),
        burst: surprise(results.burst),
        autoencoder: ae,
      });
      evidence.push({
        neighbour: { similarity: nearest, threshold: this.json.similarityThreshold },
        what: results.what.evidence,
        actor: results.actor.evidence,
        host: results.host.evidence,
        hour: results.hour.evidence,
        day: results.day.evidence,
        value: results.value.evidence,
        burst: results.burst.evidence,
        autoencoder: { error: ae, p99: quantileOf(this.json.calibration.detectors.autoencoder, 0.99) },
      });
    });
    return { values, evidence, hits };
  }

  /** Each detector's calibrated signal and the combined statistic ({@link combineSurprises}). */
  private combine(
    values: Record<DetectorName, number>,
    ignore: ReadonlySet<DetectorName> = new Set(),
  ): {
    statistic: number;
    signals: Record<DetectorName, Signal>;
  } {
    const signals = {} as Record<DetectorName, Signal>;
    const surprises: number[] = [];
    for (const d of DETECTORS) {
      const s = tailSurprise(this.json.calibration.detectors[d], values[d]);
      surprises.push(ignore.has(d) ? 0 : s);
      signals[d] = { value: values[d], p: Math.exp(-s) };
    }
    return { statistic: combineSurprises(surprises), signals };
  }

  /**
   * Score a batch of changes (one transaction, a drift burst, a file). Changes in one batch see
   * each other for the burst detector. Synchronous; about a millisecond per change.
   */
  score(events: readonly ChangeEvent[], options: ScoreOptions = {}): AnomalyScore[] {
    const threshold = options.threshold ?? this.json.threshold;
    const nNeighbours = options.neighbours ?? 3;
    const features = events.map(featurize);
    const { values, evidence, hits } = this.rawSignals(features);
    const ignore = new Set(options.ignore ?? []);
    return features.map((f, i) => {
      const { statistic, signals } = this.combine(values[i]!, ignore);
      const score = 1 - tailProbability(this.json.calibration.combined, statistic);
      const flagged = DETECTORS.filter((d) => !ignore.has(d) && signals[d].p <= REASON_P).sort(
        (a, b) => signals[a].p - signals[b].p,
      );
      const reasons = flagged.map((d) => reasonText(d, f, evidence[i]![d] ?? {}, signals[d].p));
      const similarity = hits[i]![0]?.similarity ?? 0;
      if (!flagged.includes('neighbour') && similarity < this.json.similarityThreshold)
        reasons.push(reasonText('neighbour', f, evidence[i]!.neighbour ?? {}, signals.neighbour.p));
      return {
        score,
        anomalous: score >= threshold,
        reasons,
        neighbours: hits[i]!.slice(0, nNeighbours).map((h) => this.neighbour(h.label, h.similarity)),
        signals,
      };
    });
  }

  private neighbour(label: number, similarity: number): Neighbour {
    const m = this.meta[label];
    if (m === undefined)
      return { similarity, at: '', host: '', actor: '', plugin: '', resource: '', op: 'update' };
    return { similarity, at: m[0], host: m[1], actor: m[2], plugin: m[3], resource: m[4], op: m[5] };
  }

  /**
   * Add changes to the history (counts and index) as they happen, without retraining the
   * autoencoder or the calibration. Save the model to keep them.
   */
  learn(events: readonly ChangeEvent[]): void {
    const features = events.map(featurize).sort((a, b) => a.clock.time - b.clock.time);
    this.profile.addAll(features);
    this.profile.finalize();
    this.refresh();
    for (const f of features) {
      this.index.add(this.embedder.embedChange(f), this.meta.length);
      this.meta.push(metaOf(f.event));
    }
    updateHistory(this.json.history, features, this.profile);
  }

  /**
   * Score a state snapshot against the known-good states: its similarity to the nearest one,
   * anomalous below the threshold (0.85 by default), and the last known good state.
   */
  scoreState(state: Json, options: { threshold?: number } = {}): StateScore {
    const threshold = options.threshold ?? this.json.stateThreshold;
    const v = this.embedder.embedState(state);
    const good = new Set(this.states.flatMap((s, i) => (s.flagged ? [] : [i])));
    const hits = this.stateIndex === null || good.size === 0 ? [] : searchFiltered(this.stateIndex, v, good);
    const similarity = hits[0]?.similarity ?? 0;
    const lastKnownGood = latestGood(this.states);
    const nearest = hits.slice(0, 3).map((h) => ({ ...this.states[h.label]!, similarity: h.similarity }));
    const reasons: string[] = [];
    if (hits.length === 0) reasons.push('no known-good state to compare with: record states first');
    else if (similarity < threshold)
      reasons.push(
        `state unlike every known-good state: the nearest (${nearest[0]!.id}${nearest[0]!.at === null ? '' : ` at ${nearest[0]!.at}`}) is ${similarity.toFixed(3)} similar (below ${threshold})`,
      );
    return {
      similarity,
      anomalous: hits.length > 0 && similarity < threshold,
      threshold,
      nearest,
      lastKnownGood,
      reasons,
    };
  }

  /**
   * Add snapshots to the state history, oldest first: each is scored against the states before
   * it and recorded with its flag (the first one is known good).
   */
  addStates(snapshots: readonly StateSnapshot[], options: { threshold?: number } = {}): StateScore[] {
    const out: StateScore[] = [];
    for (const snapshot of snapshots) {
      const result = this.scoreState(snapshot.state, options);
      const v = this.embedder.embedState(snapshot.state);
      this.stateIndex ??= HnswIndex.create(this.embedder.dim, 64, this.json.hnsw);
      const label = this.states.length;
      this.stateIndex.add(v, label);
      this.states.push({
        id: snapshot.id ?? String(label),
        at: snapshot.at ?? null,
        host: snapshot.host ?? null,
        flagged: result.anomalous,
      });
      out.push(result);
    }
    this.json.states = this.states.length;
    return out;
  }

  /**
   * Write the model to `dir`: into a temporary directory beside it, then renamed into place, so
   * `dir` always holds a whole model (the old one or the new one).
   */
  async save(dir: string): Promise<void> {
    const target = resolve(dir);
    const parent = dirname(target);
    const suffix = randomBytes(4).toString('hex');
    const tmp = join(parent, `.${basename(target)}.tmp-${suffix}`);
    const old = join(parent, `.${basename(target)}.old-${suffix}`);
    try {
      await mkdir(parent, { recursive: true });
      if (existsSync(target)) {
        const entries = await readdir(target);
        if (entries.length > 0 && !entries.includes('model.json'))
          throw new OpdbusError(
            'OPDBUS_ERR_ML_MODEL_WRITE',
            `${dir} exists and is not a model directory (it has files but no model.json); choose another --model directory.`,
            { data: { dir } },
          );
      }
      await mkdir(tmp);
      this.index.save(join(tmp, 'changes.hnsw'));
      await writeFile(join(tmp, 'changes.jsonl'), this.meta.map((m) => JSON.stringify(m)).join('\n') + '\n');
      await writeFile(join(tmp, 'profile.json'), JSON.stringify(this.profile.toJSON()));
      if (this.autoencoder !== null)
        await writeFile(join(tmp, 'autoencoder.json'), JSON.stringify(autoencoderToJSON(this.autoencoder)));
      if (this.stateIndex !== null) {
        this.stateIndex.save(join(tmp, 'states.hnsw'));
        await writeFile(join(tmp, 'states.json'), JSON.stringify(this.states));
      }
      // model.json last: a directory without it is not a model.
      await writeFile(join(tmp, 'model.json'), JSON.stringify(this.json, null, 1));
      if (existsSync(target)) await rename(target, old);
      await rename(tmp, target);
      await rm(old, { recursive: true, force: true });
    } catch (err) {
      // Put things back as they were; a cleanup that fails too must not hide the first error.
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      if (!existsSync(target) && existsSync(old)) await rename(old, target).catch(() => undefined);
      if (err instanceof OpdbusError) throw err;
      throw new OpdbusError(
        'OPDBUS_ERR_ML_MODEL_WRITE',
        `Cannot write the model to ${dir}: ${(err as Error).message}.`,
        {
          data: { dir },
          cause: err,
        },
      );
    }
    this.logger.debug({ dir, events: this.meta.length }, 'model saved');
  }
}

/**
 * The combined statistic: the sum of the two largest calibrated surprises (−ln p), the rank
 * truncated product of the two smallest p-values (Dudbridge & Koeleman, 2003). An anomaly shows
 * in one or two signals; summing all nine (Fisher) would add the noise of the silent ones, and
 * the largest alone (Tippett) would ignore a second signal that agrees.
 */
function combineSurprises(s: readonly number[]): number {
  let first = 0;
  let second = 0;
  for (const x of s) {
    if (x > first) {
      second = first;
      first = x;
    } else if (x > second) second = x;
  }
  return first + second;
}

function quantileOf(tail: TailModel, q: number): number {
  const s = tail.sorted;
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

function searchFiltered(
  index: HnswIndex,
  v: Float32Array,
  good: Set<number>,
): { label: number; similarity: number }[] {
  // Few states are flagged: search wider and keep the known-good ones.
  const hits = index.search(v, Math.min(index.size, 3 + (index.size - good.size)));
  return hits.filter((h) => good.has(h.label));
}

function latestGood(states: readonly KnownState[]): KnownState | null {
  let best: KnownState | null = null;
  for (const s of states) {
    if (s.flagged) continue;
    if (best === null || s.at === null || best.at === null || Date.parse(s.at) >= Date.parse(best.at))
      best = s;
  }
  return best;
}

function metaOf(e: ChangeEvent): Meta {
  return [e.at, e.host, e.actor, e.plugin, e.resource, e.op];
}

function updateHistory(
  history: ModelJson['history'],
  features: readonly ChangeFeatures[],
  profile: HistoryProfile,
): void {
  history.events = profile.n;
  history.hosts = profile.whatByHost.table.size;
  history.actors = profile.actors.distinct;
  for (const f of features) {
    if (history.from === null || f.clock.time < Date.parse(history.from)) history.from = f.event.at;
    if (history.to === null || f.clock.time > Date.parse(history.to)) history.to = f.event.at;
  }
}

/** Fewest changes a model is trained on. */
export const MIN_HISTORY = 50;

/**
 * Train a model on a history of changes: count what is usual, embed every change into the
 * HNSW index, train the autoencoder, and calibrate every detector by scoring the latest 20 % of
 * the history against the rest (its rank among them is the score). Then the held-out part is
 * added, so the model knows the whole history.
 */
export async function trainModel(
  events: readonly ChangeEvent[],
  options: TrainOptions = {},
): Promise<AnomalyModel> {
  const logger = options.logger ?? silentLogger;
  const embedder = options.embedder ?? new HashingEmbedder();
  const progress = options.onProgress ?? (() => undefined);
  if (events.length < MIN_HISTORY)
    throw new OpdbusError(
      'OPDBUS_ERR_ML_EMPTY',
      `The history has ${events.length} change events; at least ${MIN_HISTORY} are needed to learn what is usual.`,
      { data: { events: events.length } },
    );
  const features: ChangeFeatures[] = [];
  for (let i = 0; i < events.length; i++) {
    features.push(featurize(events[i]!));
    if (i % 5000 === 0) progress({ phase: 'featurize', done: i, total: events.length });
  }
  features.sort((a, b) => a.clock.time - b.clock.time);
  progress({ phase: 'featurize', done: events.length, total: events.length });
  const holdoutFraction = options.holdoutFraction ?? 0.2;
  const cut = Math.max(1, Math.min(features.length - 1, Math.round(features.length * (1 - holdoutFraction))));
  const fit = features.slice(0, cut);
  const holdout = features.slice(cut);

  const profile = new HistoryProfile();
  profile.addAll(fit);
  profile.finalize();
  progress({ phase: 'profile', done: 1, total: 1 });

  const vectors = features.map((f, i) => {
    if (i % 5000 === 0) progress({ phase: 'embed', done: i, total: features.length });
    const v = embedder.embedChange(f);
    if (v.length !== embedder.dim)
      throw new OpdbusError(
        'OPDBUS_ERR_ML_EMBEDDER',
        `Embedder ${embedder.name} returned ${v.length} dimensions, not ${embedder.dim}.`,
      );
    return v;
  });
  const hnsw = options.hnsw ?? {};
  const index = HnswIndex.create(embedder.dim, features.length, hnsw);
  const meta: Meta[] = [];
  for (let i = 0; i < cut; i++) {
    index.add(vectors[i]!, i);
    meta.push(metaOf(features[i]!.event));
    if (i % 2000 === 0) progress({ phase: 'index', done: i, total: features.length });
  }

  let autoencoder: AutoencoderWeights | null = null;
  if (options.autoencoder !== false) {
    const aeOptions = options.autoencoder ?? {};
    autoencoder = await trainAutoencoder(vectors.slice(0, cut), {
      ...aeOptions,
      onEpoch: (epoch, epochs, loss) => {
        progress({ phase: 'autoencoder', done: epoch, total: epochs });
        aeOptions.onEpoch?.(epoch, epochs, loss);
      },
    });
    logger.debug({ backend: autoencoder.backend, loss: autoencoder.loss }, 'autoencoder trained');
  }

  const json: ModelJson = {
    format: MODEL_FORMAT,
    formatVersion: MODEL_FORMAT_VERSION,
    createdAt: new Date().toISOString(),
    embedder: { name: embedder.name, dim: embedder.dim },
    threshold: options.threshold ?? DEFAULT_THRESHOLD,
    stateThreshold: options.stateThreshold ?? DEFAULT_SIMILARITY_THRESHOLD,
    similarityThreshold: DEFAULT_SIMILARITY_THRESHOLD,
    history: { events: 0, from: null, to: null, hosts: 0, actors: 0 },
    calibration: {
      detectors: Object.fromEntries(DETECTORS.map((d) => [d, fitTail([], MIN_SCALE[d])])) as Record<
        DetectorName,
        TailModel
      >,
      combined: fitTail([], 1),
      holdout: holdout.length,
    },
    autoencoder:
      autoencoder === null
        ? null
        : { backend: autoencoder.backend, loss: autoencoder.loss, trainedOn: autoencoder.trainedOn },
    hnsw,
    states: 0,
  };
  const model = new AnomalyModel({
    json,
    embedder,
    profile,
    index,
    meta,
    autoencoder,
    stateIndex: null,
    states: [],
    logger,
  });

  // Calibrate: score the held-out part against the rest.
  progress({ phase: 'calibrate', done: 0, total: holdout.length });
  const { values } = model.rawSignals(holdout, vectors.slice(cut));
  for (const d of DETECTORS)
    json.calibration.detectors[d] = fitTail(
      values.map((v) => v[d]),
      MIN_SCALE[d],
    );
  const statistics = values.map((v) => {
    return combineSurprises(DETECTORS.map((d) => tailSurprise(json.calibration.detectors[d], v[d])));
  });
  json.calibration.combined = fitTail(statistics, 1);
  progress({ phase: 'calibrate', done: holdout.length, total: holdout.length });

  // The held-out part joins the history.
  profile.addAll(holdout);
  profile.finalize();
  model.refresh();
  for (let i = cut; i < features.length; i++) {
    index.add(vectors[i]!, i);
    meta.push(metaOf(features[i]!.event));
    if (i % 2000 === 0) progress({ phase: 'index', done: i, total: features.length });
  }
  progress({ phase: 'index', done: features.length, total: features.length });
  updateHistory(json.history, features, profile);

  if (options.states !== undefined && options.states.length > 0) {
    progress({ phase: 'states', done: 0, total: options.states.length });
    model.addStates(options.states);
    progress({ phase: 'states', done: options.states.length, total: options.states.length });
  }
  return model;
}

async function readJson<T>(file: string, dir: string): Promise<T> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_ML_MODEL_CORRUPT',
      `The model in ${dir} is damaged: ${basename(file)} ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing' : `does not parse (${(err as Error).message})`}. Retrain it.`,
      { data: { dir, file }, cause: err },
    );
  }
}

/** Read a model directory written by {@link AnomalyModel.save}. Checks its format version and embedder. */
export async function loadModel(dir: string, options: LoadOptions = {}): Promise<AnomalyModel> {
  const modelFile = join(dir, 'model.json');
  try {
    await stat(modelFile);
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_ML_MODEL_MISSING',
      `No model in ${dir} (no model.json). Train one with \`opdbus anomaly train --history FILE --model ${dir}\`.`,
      { data: { dir }, cause: err },
    );
  }
  const json = await readJson<Partial<ModelJson>>(modelFile, dir);
  if (json.format !== MODEL_FORMAT)
    throw new OpdbusError(
      'OPDBUS_ERR_ML_MODEL_CORRUPT',
      `${modelFile} is not an op-dbus anomaly model (format ${JSON.stringify(json.format)}).`,
      { data: { dir } },
    );
  if (json.formatVersion !== MODEL_FORMAT_VERSION)
    throw new OpdbusError(
      'OPDBUS_ERR_ML_MODEL_VERSION',
      `The model in ${dir} has format version ${String(json.formatVersion)}; this @opdbus/ml reads version ${MODEL_FORMAT_VERSION}. Retrain it with \`opdbus anomaly train\`.`,
      { data: { dir, found: json.formatVersion, expected: MODEL_FORMAT_VERSION } },
    );
  const full = json as ModelJson;
  const embedder = options.embedder ?? new HashingEmbedder(full.embedder.dim);
  if (embedder.name !== full.embedder.name || embedder.dim !== full.embedder.dim)
    throw new OpdbusError(
      'OPDBUS_ERR_ML_EMBEDDER',
      `The model in ${dir} was trained with embedder ${full.embedder.name} (${full.embedder.dim} dimensions), not ${embedder.name} (${embedder.dim}). Retrain it or load it with the same embedder.`,
      { data: { dir, model: full.embedder, given: { name: embedder.name, dim: embedder.dim } } },
    );
  const profile = HistoryProfile.fromJSON(await readJson<ProfileJson>(join(dir, 'profile.json'), dir));
  profile.finalize();
  const metaText = await readFile(join(dir, 'changes.jsonl'), 'utf8').catch((err: unknown) => {
    throw new OpdbusError(
      'OPDBUS_ERR_ML_MODEL_CORRUPT',
      `The model in ${dir} is damaged: changes.jsonl is missing. Retrain it.`,
      {
        data: { dir },
        cause: err,
      },
    );
  });
  const meta = metaText
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Meta);
  let index: HnswIndex;
  try {
    index = HnswIndex.load(join(dir, 'changes.hnsw'), embedder.dim);
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_ML_MODEL_CORRUPT',
      `The model in ${dir} is damaged: changes.hnsw does not load (${(err as Error).message}). Retrain it.`,
      {
        data: { dir },
        cause: err,
      },
    );
  }
  const autoencoder =
    full.autoencoder === null
      ? null
      : autoencoderFromJSON(
          await readJson<Parameters<typeof autoencoderFromJSON>[0]>(join(dir, 'autoencoder.json'), dir),
        );
  let stateIndex: HnswIndex | null = null;
  let states: KnownState[] = [];
  if (full.states > 0) {
    states = await readJson<KnownState[]>(join(dir, 'states.json'), dir);
    stateIndex = HnswIndex.load(join(dir, 'states.hnsw'), embedder.dim);
  }
  return new AnomalyModel({
    json: full,
    embedder,
    profile,
    index,
    meta,
    autoencoder,
    stateIndex,
    states,
    logger: options.logger ?? silentLogger,
  });
}
