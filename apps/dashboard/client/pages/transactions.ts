import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { ApiError, api, type Session } from '../api.js';
import { CountsPlot, durations, perHour } from '../plot.js';
import { ErrorBox, Json, Page, ago, html, useApi } from '../ui.js';
import type { TransactionSummary } from './types.js';

/** Transactions: the journal, newest first, each with its status and why it ended; rollback from here. */
export function TransactionsPage({ session }: { session: Session }): ComponentChildren {
  const txs = useApi<{ transactions: TransactionSummary[]; total: number }>('/v1/transactions?limit=100', [
    'transaction',
    'correction',
  ]);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [open, setOpen] = useState<string | undefined>(undefined);
  const rollback = (txId: string): void => {
    if (!window.confirm(`Roll back ${txId}?`)) return;
    setError(undefined);
    api('/v1/rollback', { method: 'POST', body: { txId } }).then(txs.reload, (e: unknown) =>
      setError(e instanceof ApiError ? e : new ApiError(0, 'OPDBUS_ERR_INTERNAL', String(e))),
    );
  };
  const list = txs.data?.transactions ?? [];
  const hourly = perHour(list.map((t) => t.createdAt));
  const took = durations(list);
  return html`<${Page} title="Transactions">
    <${ErrorBox} error=${txs.error ?? error} />
    <p>${txs.data?.total ?? '…'} transactions in the journal.</p>
    <table>
      <thead><tr><th scope="col">Transaction</th><th scope="col">Status</th><th scope="col">Plugins</th><th scope="col">Changes</th><th scope="col">When</th><th scope="col">Actions</th></tr></thead>
      <tbody>${list.map(
        (t) =>
          html`<tr>
              <td>
                <button
                  type="button"
                  class="link"
                  aria-expanded=${open === t.txId}
                  onClick=${() => setOpen(open === t.txId ? undefined : t.txId)}
                >
                  <code>${t.txId}</code>
                </button>
              </td>
              <td><span class=${`badge ${t.status}`}>${t.status}</span></td>
              <td>${t.plugins.join(', ')}</td>
              <td>${t.changes}</td>
              <td>${ago(t.createdAt)}</td>
              <td>
                ${
                  session.scope === 'write' && ['committed', 'pending-confirm'].includes(t.status)
                    ? html`<button type="button" onClick=${() => rollback(t.txId)}>Roll back</button>`
                    : null
                }
              </td>
            </tr>
            ${
              open === t.txId
                ? html`<tr>
                    <td colspan="6"><${Json} value=${t} /></td>
                  </tr>`
                : null
            }`,
      )}</tbody>
    </table>
    <${CountsPlot} label="transactions" x=${hourly.x} y=${hourly.y} description="Changes per hour: transactions in the last 24 hours" />
    <${CountsPlot} label="durations" unit="seconds" ordinal=${true} x=${took.x} y=${took.y} description="How long each transaction took (created to its last step), oldest first" />
  </${Page}>`;
}
