export { mlErrors, type MlErrorCode } from './errors.js';
export {
  changeEventSchema,
  parseChangeEvents,
  parseChangeLine,
  readChangeEvents,
  toChangeEvent,
  wallClock,
  type ChangeEvent,
  type ChangeOp,
  type Json,
  type LineSource,
  type WallClock,
} from './events.js';
export {
  featurize,
  flatten,
  logScale,
  resourceKeys,
  resourceTokens,
  MAX_LEAVES,
  type ChangeFeatures,
  type Leaf,
} from './features.js';
export {
  cosine,
  DEFAULT_DIM,
  hash32,
  HashingEmbedder,
  hostStem,
  normalize,
  type Embedder,
} from './embedder.js';
export { BruteForceIndex, HnswIndex, type Hit, type HnswParams, type NearestIndex } from './vectorIndex.js';
export { fitTail, tailProbability, tailSurprise, MAX_CALIBRATION, type TailModel } from './calibration.js';
export {
  categoricalTail,
  cyclicTail,
  burstCounts,
  HistoryProfile,
  BURST_HALF_WINDOW_MS,
  type DetectorResult,
} from './profile.js';
export { Counter, CounterTable, CyclicCounts, NumberSample } from './stats.js';
export { BACKENDS, loadBackend, type Backend, type BackendName } from './backend.js';
export {
  reconstructionError,
  trainAutoencoder,
  type AutoencoderOptions,
  type AutoencoderWeights,
} from './autoencoder.js';
export {
  AnomalyModel,
  DEFAULT_SIMILARITY_THRESHOLD,
  DEFAULT_THRESHOLD,
  DETECTORS,
  loadModel,
  MIN_HISTORY,
  MODEL_FORMAT,
  MODEL_FORMAT_VERSION,
  trainModel,
  type AnomalyScore,
  type DetectorName,
  type KnownState,
  type LoadOptions,
  type Neighbour,
  type ScoreOptions,
  type Signal,
  type StateScore,
  type StateSnapshot,
  type TrainOptions,
  type TrainProgress,
} from './model.js';
export {
  evaluateScores,
  FrequencyBaseline,
  prAuc,
  readLabels,
  recallAtFpr,
  rocAuc,
  type Evaluation,
  type Labels,
} from './evaluate.js';
export {
  ChangeScorer,
  changeEventsOf,
  type ChangeContext,
  type ChangeScore,
  type ChangeScorerOptions,
} from './changes.js';
