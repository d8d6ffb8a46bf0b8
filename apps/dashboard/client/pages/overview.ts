import type { ComponentChildren } from 'preact';
import { CountsPlot, perHour } from '../plot.js';
import { ErrorBox, Page, ago, html, useApi } from '../ui.js';
import type { CheckpointReport, StateReport, TransactionSummary } from './types.js';

const live = ['drift', 'drift.resolved', 'correction', 'hold', 'transaction', 'status', 'reload'] as const;

/** Overview: the daemon, its plugins, drift, the last transactions and the ledger, live. */
export function OverviewPage(): ComponentChildren {
  const state = useApi<StateReport>('/v1/state', live);
  const txs = useApi<{ transactions: TransactionSummary[]; total: number }>(
    '/v1/transactions?limit=200',
    live,
  );
  const checkpoint = useApi<CheckpointReport>('/v1/ledger/checkpoint', live);
  const d = state.data?.daemon;
  const plugins = Object.keys(state.data?.desired?.plugins ?? {});
  const hourly = perHour((txs.data?.transactions ?? []).map((t) => t.createdAt));
  return html`<${Page} title="Overview">
    <${ErrorBox} error=${state.error} />
    <div class="cards">
      <div class="card"><h2>Daemon</h2>
        <dl>
          <dt>Status</dt><dd data-testid="daemon-status">${d?.status ?? '…'}${d?.detail ? ` (${d.detail})` : ''}</dd>
          <dt>Mode</dt><dd>${d?.mode ?? '…'}</dd>
          <dt>Version</dt><dd>${d?.version ?? '…'}</dd>
          <dt>Running since</dt><dd>${ago(d?.startedAt)}</dd>
        </dl></div>
      <div class="card"><h2>Drift</h2>
        <p class="big"><a href="#/drift" data-testid="drift-count">${d?.drift ?? '…'}</a></p>
        <p>resources drifted, ${d?.holds ?? 0} on hold</p></div>
      <div class="card"><h2>Managed</h2>
        <p>Desired state from <code>${state.data?.desired?.source ?? '—'}</code></p>
        <ul class="tags">${plugins.map((p) => html`<li>${p}</li>`)}</ul></div>
      <div class="card"><h2>Ledger</h2>
        ${
          checkpoint.error
            ? html`<p>${checkpoint.error.message}</p>`
            : html`<dl>
                <dt>Entries</dt>
                <dd data-testid="ledger-size">${checkpoint.data?.size ?? '…'}</dd>
                <dt>Checkpoint root</dt>
                <dd><code>${checkpoint.data?.root.slice(0, 16) ?? '…'}…</code></dd>
                <dt>Origin</dt>
                <dd>${checkpoint.data?.origin ?? '…'}</dd>
              </dl>`
        }</div>
    </div>
    <h2>Last transactions</h2>
    <${ErrorBox} error=${txs.error} />
    <table>
      <caption class="sr-only">The five most recent transactions</caption>
      <thead><tr><th scope="col">Transaction</th><th scope="col">Status</th><th scope="col">Changes</th><th scope="col">When</th></tr></thead>
      <tbody>${(txs.data?.transactions ?? []).slice(0, 5).map(
        (t) =>
          html`<tr>
            <td><code>${t.txId}</code></td>
            <td><span class=${`badge ${t.status}`}>${t.status}</span></td>
            <td>${t.changes}</td>
            <td>${ago(t.createdAt)}</td>
          </tr>`,
      )}</tbody>
    </table>
    <${CountsPlot} label="transactions" x=${hourly.x} y=${hourly.y} description="Transactions per hour, last 24 hours" />
  </${Page}>`;
}
