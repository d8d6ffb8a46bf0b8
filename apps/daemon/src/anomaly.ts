/**
 * Anomaly scoring in the daemon: each plan an API client asks for or applies, and each drift, is
 * scored with a model trained by `opdbus anomaly train` (@opdbus/ml, loaded only when
 * `--anomaly-model` is given). A score at or above the threshold is an alert: a ledger entry
 * (`alert`), a metric, an SSE event and a log line. Two policies, off by default: a planned change
 * above the threshold is refused, or applied only when the client acknowledges it (`ask`); drift
 * above the threshold is rolled back to the desired state (the last known good) even where the
 * resource is only observed.
 */
import { OpdbusError, type AnyPlugin, type Change } from '@opdbus/core';
import type { ChangeScore, ChangeScorer } from '@opdbus/ml';

/** What happens to an API plan whose changes score at or above the threshold. */
export type PlanPolicy = 'off' | 'ask' | 'refuse';
/** What happens to drift that scores at or above the threshold. */
export type DriftPolicy = 'off' | 'rollback';

/** The anomaly options of the daemon. */
export interface AnomalyOptions {
  scorer: ChangeScorer;
  /** Where the model was loaded from (shown by `/v1/anomalies`). */
  modelDir?: string;
  /** Default `off`: alerts only. */
  plan: PlanPolicy;
  /** Default `off`: alerts only. */
  drift: DriftPolicy;
}

/** The part of a score the API, the events and the ledger carry. */
export interface ScoreSummary {
  key: string;
  changeId: string;
  score: number;
  anomalous: boolean;
  reasons: string[];
  neighbours: ChangeScore['neighbours'];
}

/** Load the model directory for the daemon; a clear error when @opdbus/ml is not installed. */
export async function loadScorer(dir: string, threshold?: number): Promise<ChangeScorer> {
  let ml: { ChangeScorer: typeof ChangeScorer };
  try {
    ml = await import('@opdbus/ml');
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_USAGE',
      `--anomaly-model needs the @opdbus/ml package, which cannot be loaded here (${(err as Error).message}); install it beside @opdbus/daemon (npm install @opdbus/ml).`,
      { cause: err },
    );
  }
  return ml.ChangeScorer.load(dir, threshold === undefined ? {} : { threshold });
}

/** Score changes, as summaries (reasons clipped for the ledger). */
export function scoreChanges(
  scorer: ChangeScorer,
  changes: readonly Change[],
  plugins: (name: string) => AnyPlugin | undefined,
  context: { actor: string; drift?: boolean },
): ScoreSummary[] {
  return scorer.score(changes, plugins, context).map((s) => ({
    key: s.key,
    changeId: s.changeId,
    score: s.score,
    anomalous: s.anomalous,
    reasons: s.reasons.slice(0, 5).map((r) => (r.length > 512 ? `${r.slice(0, 511)}…` : r)),
    neighbours: s.neighbours,
  }));
}

/**
 * Refuse a plan under the `refuse` policy, or under `ask` unless the client acknowledged the
 * anomalies; nothing under `off`.
 */
export function checkPlanPolicy(
  policy: PlanPolicy,
  scores: readonly ScoreSummary[],
  threshold: number,
  acknowledged: boolean,
): void {
  const flagged = scores.filter((s) => s.anomalous);
  if (policy === 'off' || flagged.length === 0) return;
  const list = flagged
    .slice(0, 3)
    .map((s) => `${s.key} (${s.score.toFixed(3)}: ${s.reasons[0] ?? 'unusual'})`)
    .join('; ');
  const data = {
    threshold,
    anomalies: flagged.map(({ key, changeId, score, reasons }) => ({ key, changeId, score, reasons })),
  };
  if (policy === 'refuse')
    throw new OpdbusError(
      'OPDBUS_ERR_ANOMALY_REFUSED',
      `${flagged.length} planned change(s) score at or above the anomaly threshold ${threshold} and this daemon refuses them: ${list}. Nothing was changed; ask an operator to review the change (or to retrain the model if it is routine).`,
      { data },
    );
  if (!acknowledged)
    throw new OpdbusError(
      'OPDBUS_ERR_ANOMALY_ASK',
      `${flagged.length} planned change(s) score at or above the anomaly threshold ${threshold}: ${list}. Nothing was changed; review them and send the apply again with "acknowledgeAnomalies": true to go ahead.`,
      { data },
    );
}
