// Drift over time, from the ledger: the daemon's own `drift` entries (detected, corrected, held,
// correction-failed) counted per hour. The ledger is the record, so the plot covers restarts and
// what happened while no page was open.
import type { Ledger } from '@opdbus/ledger';

/** One hour of drift. Counts are of resources (a drift entry's `changes`), holds of entries. */
export interface DriftHour {
  /** Start of the hour, Unix seconds. */
  at: number;
  /** Resources found drifted. */
  detected: number;
  /** Resources brought back by a correction. */
  corrected: number;
  /** Resources put on hold for flapping. */
  held: number;
  /** Resources a correction failed to bring back. */
  failed: number;
}

/** What `GET /v1/drift/history` answers. */
export interface DriftHistory {
  /** The window, ISO times (from the start of its first hour to now). */
  from: string;
  to: string;
  /** One bucket per hour, oldest first, every hour of the window present. */
  hours: DriftHour[];
  /** Totals over the window. */
  totals: Omit<DriftHour, 'at'>;
  /** Ledger entries read to answer (the window's, and the chunk before it). */
  entriesRead: number;
}

const CHUNK = 256;
const HOUR_S = 3600;

/**
 * Count the ledger's drift entries per hour over the last `hours` hours, reading from the end
 * backwards and stopping at the first chunk that reaches back before the window (entries are
 * appended in time order), so the cost follows the window, not the ledger's size.
 */
export async function driftHistory(
  ledger: Pick<Ledger, 'size' | 'entries'>,
  hours: number,
  now = Date.now(),
): Promise<DriftHistory> {
  const lastHour = Math.floor(now / 1000 / HOUR_S);
  const firstHour = lastHour - hours + 1;
  const start = firstHour * HOUR_S * 1000;
  const buckets: DriftHour[] = [];
  for (let h = firstHour; h <= lastHour; h++)
    buckets.push({ at: h * HOUR_S, detected: 0, corrected: 0, held: 0, failed: 0 });
  let read = 0;
  for (let to = ledger.size; to > 0;) {
    const from = Math.max(0, to - CHUNK);
    let earliest = Infinity;
    for await (const e of ledger.entries(from, to)) {
      read++;
      const v = e.value as { kind?: unknown; status?: unknown; at?: unknown; changes?: unknown };
      const at = typeof v.at === 'string' ? Date.parse(v.at) : NaN;
      if (!Number.isFinite(at)) continue;
      earliest = Math.min(earliest, at);
      if (v.kind !== 'drift' || at < start || at > now) continue;
      const bucket = buckets[Math.floor(at / 1000 / HOUR_S) - firstHour];
      if (bucket === undefined) continue;
      const n = typeof v.changes === 'number' ? v.changes : 0;
      if (v.status === 'detected') bucket.detected += n;
      else if (v.status === 'corrected') bucket.corrected += n;
      else if (v.status === 'held') bucket.held += Math.max(n, 1);
      else if (v.status === 'correction-failed') bucket.failed += n;
    }
    if (earliest < start) break;
    to = from;
  }
  const totals = { detected: 0, corrected: 0, held: 0, failed: 0 };
  for (const b of buckets) {
    totals.detected += b.detected;
    totals.corrected += b.corrected;
    totals.held += b.held;
    totals.failed += b.failed;
  }
  return {
    from: new Date(start).toISOString(),
    to: new Date(now).toISOString(),
    hours: buckets,
    totals,
    entriesRead: read,
  };
}
