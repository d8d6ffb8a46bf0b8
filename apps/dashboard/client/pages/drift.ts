import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { onEvent } from '../api.js';
import { CountsPlot } from '../plot.js';
import { ErrorBox, Json, Page, ago, html, useApi } from '../ui.js';
import type { DriftHistory, DriftReport } from './types.js';

const action = (state: string, mode: string): string =>
  state === 'held'
    ? 'held (flapping)'
    : state === 'correcting'
      ? 'correcting'
      : state === 'failed'
        ? 'correction failed'
        : mode === 'enforce'
          ? 'to be corrected'
          : 'observed';

/** Drift: resources not at their desired state, live, with the diff and what the daemon does about it. */
export function DriftPage(): ComponentChildren {
  const report = useApi<DriftReport>('/v1/drift', [
    'drift',
    'drift.resolved',
    'correction',
    'hold',
    'baseline',
    'reload',
  ]);
  const [seen, setSeen] = useState<{ at: string; text: string }[]>([]);
  useEffect(
    () =>
      onEvent((e) => {
        if (!['drift', 'drift.resolved', 'correction', 'hold'].includes(e.type)) return;
        const keys = Array.isArray(e.items)
          ? (e.items as { key: string }[]).map((i) => i.key)
          : Array.isArray(e.keys)
            ? (e.keys as string[])
            : [];
        const text =
          e.type === 'correction'
            ? `corrected${e.ok === false ? ' (failed)' : ''}`
            : e.type === 'drift.resolved'
              ? `resolved by ${String(e.by)}`
              : e.type;
        setSeen((s) =>
          [{ at: e.at ?? new Date().toISOString(), text: `${text}: ${keys.join(', ')}` }, ...s].slice(0, 100),
        );
      }),
    [],
  );
  const items = report.data?.drift ?? [];
  // Drift over time is read from the ledger (so it covers restarts and hours no page was open).
  const history = useApi<DriftHistory>('/v1/drift/history?hours=24', ['drift.recorded']);
  const hours = history.data?.hours ?? [];
  const totals = history.data?.totals;
  return html`<${Page} title="Drift">
    <${ErrorBox} error=${report.error} />
    <p role="status" aria-live="polite" data-testid="drift-summary">${items.length === 0 ? 'Every managed resource is at its desired state.' : `${items.length} resource${items.length === 1 ? '' : 's'} drifted.`}</p>
    <ul class="drift">${items.map(
      (d) =>
        html`<li class=${`drift-item ${d.state}`} data-key=${d.key}>
          <h2><code>${d.key}</code> <span class=${`badge ${d.state}`}>${action(d.state, d.mode)}</span></h2>
          <p>${d.summary} · mode ${d.mode} · since ${ago(d.since)} · desired by ${d.authority}</p>
          ${d.error ? html`<p class="error">${d.error}</p>` : null}
          <div class="diff">
            <div>
              <h3>Observed</h3>
              <${Json} value=${d.before} />
            </div>
            <div>
              <h3>Desired</h3>
              <${Json} value=${d.after} />
            </div>
          </div>
        </li>`,
    )}</ul>
    ${
      (report.data?.holds.length ?? 0) > 0
        ? html`<h2>On hold</h2>
            <${Json} value=${report.data?.holds} />`
        : null
    }
    <h2>Seen while this page was open</h2>
    <ol class="events" aria-live="polite">${seen.map((s) => html`<li><time>${new Date(s.at).toLocaleTimeString()}</time> ${s.text}</li>`)}</ol>
    <h2>Drift over the last 24 hours</h2>
    <${ErrorBox} error=${history.error} />
    ${
      totals === undefined
        ? null
        : html`<p data-testid="drift-history">
            From the ledger: ${totals.detected} resource(s) drifted, ${totals.corrected} corrected, ${totals.held} put on hold, ${totals.failed} failed to correct.
          </p>`
    }
    <${CountsPlot}
      label="drifted"
      x=${hours.map((h) => h.at)}
      y=${hours.map((h) => h.detected)}
      more=${[
        { label: 'corrected', y: hours.map((h) => h.corrected), stroke: '#26a269' },
        { label: 'held', y: hours.map((h) => h.held), stroke: '#c64600' },
      ]}
      unit="resources"
      description="Resources drifted (bars), corrected and held (lines) per hour, from the ledger"
    />
  </${Page}>`;
}
