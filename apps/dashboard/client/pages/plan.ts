import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, type Session } from '../api.js';
import { ErrorBox, Json, Page, html } from '../ui.js';
import { PLAN_HANDOFF } from './snapshots.js';
import type { Plan, TransactionSummary } from './types.js';

interface ApplyResult {
  status: string;
  txId: string | null;
  deadline: string | null;
  plan: Plan;
}

const asError = (e: unknown): ApiError =>
  e instanceof ApiError ? e : new ApiError(0, 'OPDBUS_ERR_INTERNAL', String(e));

function Countdown({ deadline }: { deadline: string }): ComponentChildren {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, []);
  const left = Math.max(0, Math.ceil((Date.parse(deadline) - now) / 1000));
  return html`<p class="countdown" role="timer" aria-live="off" data-testid="countdown">
    Rolls back in <strong>${left} s</strong> unless confirmed.
  </p>`;
}

/** Plan & apply: a document → the plan with its risks → apply with commit-confirmed → confirm → verify. */
export function PlanPage({ session }: { session: Session }): ComponentChildren {
  const [text, setText] = useState(() => {
    // A document handed over by another page (a snapshot to restore): taken once.
    const handed = sessionStorage.getItem(PLAN_HANDOFF);
    sessionStorage.removeItem(PLAN_HANDOFF);
    return handed ?? '';
  });
  const [plan, setPlan] = useState<Plan | undefined>(undefined);
  const [notes, setNotes] = useState<string[]>([]);
  const [timeout, setTimeoutS] = useState(120);
  const [applied, setApplied] = useState<ApplyResult | undefined>(undefined);
  const [final, setFinal] = useState<TransactionSummary | undefined>(undefined);
  const [verify, setVerify] = useState<Plan | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const canWrite = session.scope === 'write';

  const run = (fn: () => Promise<void>): void => {
    setBusy(true);
    setError(undefined);
    fn()
      .catch((e: unknown) => setError(asError(e)))
      .finally(() => setBusy(false));
  };
  const doPlan = (): void =>
    run(async () => {
      setApplied(undefined);
      setFinal(undefined);
      setVerify(undefined);
      const r = await api<{ plan: Plan; notes?: string[] }>('/v1/plan', {
        method: 'POST',
        body: { document: text },
      });
      setPlan(r.plan);
      setNotes(r.notes ?? []);
    });
  const doApply = (): void =>
    run(async () => {
      const r = await api<ApplyResult>('/v1/apply', {
        method: 'POST',
        body: { document: text, confirmTimeoutS: timeout },
      });
      setApplied(r);
      if (r.status !== 'pending-confirm') await afterwards(r.txId);
    });
  const afterwards = async (txId: string | null): Promise<void> => {
    if (txId !== null) {
      const list = await api<{ transactions: TransactionSummary[] }>('/v1/transactions?limit=50');
      setFinal(list.transactions.find((t) => t.txId === txId));
    }
    // The verify step: plan the same document again; nothing left to change means the host matches it.
    setVerify((await api<{ plan: Plan }>('/v1/plan', { method: 'POST', body: { document: text } })).plan);
  };
  const doConfirm = (): void =>
    run(async () => {
      const tx = await api<TransactionSummary>('/v1/confirm', {
        method: 'POST',
        body: { txId: applied?.txId ?? undefined },
      });
      setApplied((a) => (a === undefined ? a : { ...a, status: tx.status, deadline: null }));
      await afterwards(tx.txId);
    });
  const upload = (e: Event): void => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file !== undefined) void file.text().then(setText);
  };
  const risky = plan?.changes.filter((c) => c.risk !== undefined) ?? [];

  return html`<${Page} title="Plan & apply">
    ${canWrite ? null : html`<p class="note">Your token has the read scope: you can plan, not apply.</p>`}
    <label for="doc">State document (YAML or JSON)</label>
    <textarea id="doc" rows="12" spellcheck="false" value=${text} onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}></textarea>
    <div class="toolbar">
      <label for="doc-file">or upload a file</label>
      <input id="doc-file" type="file" accept=".yaml,.yml,.json,text/yaml,application/json" onChange=${upload} />
      <button type="button" onClick=${doPlan} disabled=${busy || text.trim() === ''}>Plan</button>
    </div>
    <${ErrorBox} error=${error} />
    ${
      plan === undefined
        ? null
        : html`<h2>Plan <code>${plan.hash.slice(0, 12)}</code></h2>
            <p data-testid="plan-summary">
              ${`${plan.changes.length} change${plan.changes.length === 1 ? '' : 's'}${risky.length > 0 ? `, ${risky.length} risky` : ''}.`}
            </p>
            ${notes.map((n) => html`<p class="note">${n}</p>`)}
            <table>
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">Change</th>
                  <th scope="col">Risk</th>
                </tr>
              </thead>
              <tbody>
                ${plan.changes.map(
                  (c, i) =>
                    html`<tr class=${c.risk ? 'risky' : ''}>
                      <td>${i + 1}</td>
                      <td><code>${c.plugin}</code> ${c.summary}</td>
                      <td>${c.risk ? html`<strong>${c.risk.reason}</strong>` : '—'}</td>
                    </tr>`,
                )}
              </tbody>
            </table>
            ${
              canWrite && plan.changes.length > 0 && applied === undefined
                ? html`<div class="toolbar">
                    <label for="confirm-timeout"
                      >Commit-confirmed: roll back unless confirmed within (s)</label
                    >
                    <input
                      id="confirm-timeout"
                      type="number"
                      min="10"
                      max="86400"
                      value=${timeout}
                      onInput=${(e: Event) => setTimeoutS(Number((e.target as HTMLInputElement).value))}
                    />
                    <button type="button" class="primary" onClick=${doApply} disabled=${busy}>Apply</button>
                  </div>`
                : null
            }`
    }
    ${
      applied === undefined
        ? null
        : html`<h2>Transaction <code>${applied.txId ?? '—'}</code></h2>
            <p>
              Status:
              <span class=${`badge ${applied.status}`} data-testid="apply-status">${applied.status}</span>
            </p>
            ${
              applied.status === 'pending-confirm' && applied.deadline !== null
                ? html`<${Countdown} deadline=${applied.deadline} />
                    <button type="button" class="primary" onClick=${doConfirm} disabled=${busy}>
                      Confirm
                    </button>`
                : null
            }`
    }
    ${
      final === undefined
        ? null
        : html`<h3>Journal</h3>
            <${Json} value=${final} />`
    }
    ${
      verify === undefined
        ? null
        : html`<h3>Verify</h3>
            <p data-testid="verify-result" class=${verify.changes.length === 0 ? 'ok' : 'error'}>
              ${
                verify.changes.length === 0
                  ? 'Verified: the host matches the document (a new plan has no changes).'
                  : `Not at the document: ${verify.changes.length} change(s) remain.`
              }
            </p>`
    }
  </${Page}>`;
}
