/**
 * Scoring the engine's own changes: a plan's changes before they are applied, and drift the host
 * underwent. What the daemon and the MCP server share: the change events are made from the
 * engine's `Change` objects with the plugin's own redaction (as the ledger records them), so the
 * model sees what it was trained on (`opdbus ledger export-changes`).
 */
import { hostname } from 'node:os';
import { auditChanges, resourceKey, type AnyPlugin, type Change } from '@opdbus/core';
import type { ChangeEvent } from './events.js';
import {
  loadModel,
  type AnomalyModel,
  type DetectorName,
  type LoadOptions,
  type Neighbour,
} from './model.js';

/** One scored change of a plan or of a drift. */
export interface ChangeScore {
  /** `plugin:resource`. */
  key: string;
  /** The change's id (as in the plan and the ledger). */
  changeId: string;
  /** Calibrated score in [0, 1] (higher: more unusual). */
  score: number;
  /** `score ≥ threshold`. */
  anomalous: boolean;
  /** Why, most telling first. */
  reasons: string[];
  /** The nearest past changes, most similar first. */
  neighbours: Neighbour[];
}

/** Who and when, for {@link changeEventsOf}. */
export interface ChangeContext {
  /** The host name the history knows this host by (default: this machine's host name). */
  host?: string;
  /** Who makes the change: the token's or user's name; for drift, who is unknown (`drift`). */
  actor: string;
  /** When (default: now). */
  at?: Date;
  /**
   * The changes are corrections of drift (the engine's change takes the host back to the document):
   * score what happened on the host instead, which is each change's inverse.
   */
  drift?: boolean;
}

/**
 * The change events of engine changes: redacted by their plugins as the ledger records them;
 * for drift (`context.drift`), the inverse of each correcting change (what the host underwent).
 */
export function changeEventsOf(
  changes: readonly Change[],
  plugins: (name: string) => AnyPlugin | undefined,
  context: ChangeContext,
): ChangeEvent[] {
  const at = (context.at ?? new Date()).toISOString();
  const host = context.host ?? hostname();
  return auditChanges(changes, plugins, { inverse: context.drift === true }).map((record) => ({
    at,
    host,
    actor: context.actor,
    plugin: record.plugin,
    resource: record.resource,
    op: record.op,
    before: record.before,
    after: record.after,
  }));
}

/** Options of {@link ChangeScorer.load}. */
export interface ChangeScorerOptions extends LoadOptions {
  /** Override the model's threshold (a score at or above it is anomalous). */
  threshold?: number;
  /** The host name the history knows this host by (default: this machine's host name). */
  host?: string;
}

/**
 * A trained model put to work on the engine's changes: load it once (`ChangeScorer.load(dir)`),
 * then score each plan and each drift synchronously (about a millisecond per change).
 *
 * @example
 * ```ts
 * const scorer = await ChangeScorer.load('/var/lib/opdbus/model');
 * const scores = scorer.score(plan.changes, (name) => engine.registry.get(name), { actor: 'alice' });
 * for (const s of scores.filter((s) => s.anomalous)) console.log(s.key, s.score, s.reasons);
 * ```
 */
export class ChangeScorer {
  readonly model: AnomalyModel;
  readonly threshold: number;
  readonly host: string;

  constructor(model: AnomalyModel, options: { threshold?: number; host?: string } = {}) {
    this.model = model;
    this.threshold = options.threshold ?? model.threshold;
    this.host = options.host ?? hostname();
  }

  /** Load the model directory `opdbus anomaly train --model DIR` wrote. */
  static async load(dir: string, options: ChangeScorerOptions = {}): Promise<ChangeScorer> {
    const { threshold, host, ...load } = options;
    return new ChangeScorer(await loadModel(dir, load), {
      ...(threshold === undefined ? {} : { threshold }),
      ...(host === undefined ? {} : { host }),
    });
  }

  /** Score engine changes (a plan's, or drift's with `context.drift`), in order. */
  score(
    changes: readonly Change[],
    plugins: (name: string) => AnyPlugin | undefined,
    context: Omit<ChangeContext, 'host'>,
  ): ChangeScore[] {
    if (changes.length === 0) return [];
    const events = changeEventsOf(changes, plugins, { ...context, host: this.host });
    // Drift has no known actor (the host was changed outside op-dbus): its actor is not scored.
    const ignore: DetectorName[] = context.drift === true ? ['actor'] : [];
    return this.model.score(events, { threshold: this.threshold, ignore }).map((s, i) => ({
      key: resourceKey(changes[i]!),
      changeId: changes[i]!.id,
      score: s.score,
      anomalous: s.anomalous,
      reasons: s.reasons,
      neighbours: s.neighbours,
    }));
  }
}
