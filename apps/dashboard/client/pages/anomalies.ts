import type { ComponentChildren } from 'preact';
import { ErrorBox, Page, ago, html, useApi } from '../ui.js';

interface Scored {
  event: { at: string; host: string; actor: string; plugin: string; resource: string; op: string };
  score: number;
  anomalous: boolean;
  reasons: string[];
}

interface Anomalies {
  available: boolean;
  reason?: string;
  model?: string;
  threshold?: number;
  changes: Scored[];
}

/** Anomalies: the recorded changes scored by the daemon's @opdbus/ml model, with the reasons. */
export function AnomaliesPage(): ComponentChildren {
  const r = useApi<Anomalies>('/v1/anomalies?limit=200', ['transaction']);
  const d = r.data;
  const rows = [...(d?.changes ?? [])].reverse();
  return html`<${Page} title="Anomalies">
    <${ErrorBox} error=${r.error} />
    ${
      d === undefined
        ? null
        : !d.available
          ? html`<p class="note" data-testid="anomalies-unavailable">
              The daemon cannot score changes: ${d.reason}
            </p>`
          : html`<p>
                ${rows.filter((c) => c.anomalous).length} of ${rows.length} recorded changes flagged (model <code>${d.model}</code>, threshold ${d.threshold}).
              </p>
              <table>
                <thead>
                  <tr>
                    <th scope="col">Score</th>
                    <th scope="col">Change</th>
                    <th scope="col">Actor</th>
                    <th scope="col">When</th>
                    <th scope="col">Why</th>
                  </tr>
                </thead>
                <tbody>
                  ${rows.map(
                    (c) =>
                      html`<tr class=${c.anomalous ? 'risky' : ''}>
                        <td>
                          ${c.score.toFixed(3)}${c.anomalous ? html` <strong>anomalous</strong>` : null}
                        </td>
                        <td>${c.event.op} <code>${c.event.plugin}/${c.event.resource}</code></td>
                        <td>${c.event.actor}</td>
                        <td>${ago(c.event.at)}</td>
                        <td>${c.reasons.join('; ')}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
    }
  </${Page}>`;
}
