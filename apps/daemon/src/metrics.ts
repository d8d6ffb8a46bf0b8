import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The daemon's Prometheus metrics (every series named `opdbus_*`). */
export interface DaemonMetrics {
  registry: Registry;
  watchEvents: Counter<'plugin'>;
  driftEvents: Counter<'plugin' | 'mode'>;
  corrections: Counter<'result'>;
  holds: Counter;
  holdsActive: Gauge;
  driftActive: Gauge;
  checks: Counter<'plugin'>;
  checkErrors: Counter;
  transactionSeconds: Histogram<'kind' | 'result'>;
  driftDetectSeconds: Histogram;
  reloads: Counter<'result'>;
  anomalyScores: Histogram<'source'>;
  anomalyAlerts: Counter<'source'>;
  up: Gauge;
}

/**
 * Create the metrics: drift events, corrections, holds, transaction durations, ledger size, and
 * the process metrics of prom-client (event-loop lag, RSS, CPU, handles), all prefixed `opdbus_`.
 */
export function createMetrics(stateDir: string): DaemonMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'opdbus_' });
  const registers = [registry];
  const ledgerLog = join(stateDir, 'ledger', 'log');
  new Gauge({
    name: 'opdbus_ledger_bytes',
    help: 'Size of the ledger log file in bytes',
    registers,
    async collect() {
      try {
        this.set((await stat(ledgerLog)).size);
      } catch {
        this.set(0);
      }
    },
  });
  return {
    registry,
    watchEvents: new Counter({
      name: 'opdbus_watch_events_total',
      help: 'Events received from plugins native event streams',
      labelNames: ['plugin'],
      registers,
    }),
    driftEvents: new Counter({
      name: 'opdbus_drift_events_total',
      help: 'Resources found drifted from the desired state',
      labelNames: ['plugin', 'mode'],
      registers,
    }),
    corrections: new Counter({
      name: 'opdbus_corrections_total',
      help: 'Corrections of drift by result (committed, failed)',
      labelNames: ['result'],
      registers,
    }),
    holds: new Counter({
      name: 'opdbus_holds_total',
      help: 'Resources put on hold by flap damping',
      registers,
    }),
    holdsActive: new Gauge({ name: 'opdbus_holds_active', help: 'Resources on hold now', registers }),
    driftActive: new Gauge({ name: 'opdbus_drift_active', help: 'Resources drifted now', registers }),
    checks: new Counter({
      name: 'opdbus_checks_total',
      help: 'Comparisons of the observed with the desired state',
      labelNames: ['plugin'],
      registers,
    }),
    checkErrors: new Counter({
      name: 'opdbus_check_errors_total',
      help: 'Comparisons that failed (target gone, plugin error)',
      registers,
    }),
    transactionSeconds: new Histogram({
      name: 'opdbus_transaction_duration_seconds',
      help: 'Duration of transactions the daemon ran',
      labelNames: ['kind', 'result'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    driftDetectSeconds: new Histogram({
      name: 'opdbus_drift_detect_seconds',
      help: 'From a native event to the drift record',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    reloads: new Counter({
      name: 'opdbus_reloads_total',
      help: 'Reloads of the desired state by result (ok, refused)',
      labelNames: ['result'],
      registers,
    }),
    anomalyScores: new Histogram({
      name: 'opdbus_anomaly_score',
      help: 'Anomaly scores of planned changes and drift (with --anomaly-model)',
      labelNames: ['source'],
      buckets: [0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999],
      registers,
    }),
    anomalyAlerts: new Counter({
      name: 'opdbus_anomaly_alerts_total',
      help: 'Changes that scored at or above the anomaly threshold, by source (plan, drift)',
      labelNames: ['source'],
      registers,
    }),
    up: new Gauge({ name: 'opdbus_watching', help: '1 while the daemon watches its target', registers }),
  };
}
