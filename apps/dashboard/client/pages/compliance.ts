import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { ApiError, api } from '../api.js';
import { ErrorBox, Page, html, useApi } from '../ui.js';

interface Report {
  framework: { id: string; title: string; standard: string; version: string };
  generatedAt: string;
  host: string;
  ledger: { size: number; root: string };
  summary: Record<string, number>;
  controls: {
    id: string;
    title: string;
    status: string;
    manual?: string;
    evidence: { query?: string; why?: string }[];
  }[];
}

const statusClass: Record<string, string> = { pass: 'committed', fail: 'failed', manual: 'open' };

/** Compliance: a report of a framework's controls (@opdbus/compliance) from the ledger and the host. */
export function CompliancePage(): ComponentChildren {
  const frameworks = useApi<{ frameworks: string[] }>('/v1/compliance/frameworks');
  const [chosen, setChosen] = useState('soc2');
  const [report, setReport] = useState<Report | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const run = (e: Event): void => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    api<Report>(`/v1/compliance/reports/${encodeURIComponent(chosen)}`)
      .then(setReport, (err: unknown) =>
        setError(err instanceof ApiError ? err : new ApiError(0, 'OPDBUS_ERR_INTERNAL', String(err))),
      )
      .finally(() => setBusy(false));
  };
  return html`<${Page} title="Compliance">
    <form class="toolbar" onSubmit=${run}>
      <label for="framework">Framework</label>
      <select id="framework" value=${chosen} onChange=${(e: Event) => setChosen((e.target as HTMLSelectElement).value)}>
        ${(frameworks.data?.frameworks ?? ['soc2']).map((f) => html`<option value=${f}>${f}</option>`)}
      </select>
      <button type="submit" class="primary" disabled=${busy}>Make the report</button>
    </form>
    <${ErrorBox} error=${frameworks.error ?? error} />
    ${
      report === undefined
        ? html`<p class="note">The report evaluates each control from the ledger's entries and the host's observed state, against the current signed checkpoint. For an evidence bundle an auditor can verify offline, use <code>opdbus compliance report --framework NAME --out DIR</code>.</p>`
        : html`<h2>${report.framework.title} (${report.framework.standard} ${report.framework.version})</h2>
        <p data-testid="compliance-summary">${`${report.summary.pass ?? 0} pass, ${report.summary.fail ?? 0} fail, ${report.summary.manual ?? 0} manual, ${report.summary['not-applicable'] ?? 0} not applicable`} · host ${report.host} · ledger checkpoint at ${report.ledger.size} entries · ${new Date(report.generatedAt).toLocaleString()}</p>
        <table>
          <thead><tr><th scope="col">Control</th><th scope="col">Status</th><th scope="col">Evidence</th></tr></thead>
          <tbody>${report.controls.map(
            (c) => html`<tr>
              <td><strong>${c.id}</strong> ${c.title}</td>
              <td><span class=${`badge ${statusClass[c.status] ?? ''}`}>${c.status}</span></td>
              <td>${c.evidence
                .map((e) => e.query)
                .filter(Boolean)
                .join(', ')}${c.manual ? html`<br /><em>${`manual: ${c.manual}`}</em>` : null}</td>
            </tr>`,
          )}</tbody>
        </table>`
    }
  </${Page}>`;
}
