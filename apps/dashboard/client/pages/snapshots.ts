import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { ApiError, api, type Session } from '../api.js';
import { ErrorBox, Page, ago, html, useApi } from '../ui.js';

interface SnapshotInfo {
  id: string;
  status: string;
  createdAt?: string;
  trigger?: { kind?: string; txId?: string };
  plugins?: string[];
  problem?: string;
}

/** Where the Plan & apply page picks up a document handed to it (a snapshot to restore). */
export const PLAN_HANDOFF = 'opdbus.plan.document';

/** Snapshots: the encrypted state snapshots, checked against the ledger; restore one as a plan. */
export function SnapshotsPage({ session }: { session: Session }): ComponentChildren {
  const list = useApi<{ backend: string; snapshots: SnapshotInfo[] }>('/v1/snapshots', ['transaction']);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const restore = (id: string): void => {
    setError(undefined);
    api<{ document: unknown }>(`/v1/snapshots/${encodeURIComponent(id)}/document`).then(
      (r) => {
        sessionStorage.setItem(PLAN_HANDOFF, JSON.stringify(r.document, null, 2));
        location.hash = '#/plan';
      },
      (e: unknown) => setError(e instanceof ApiError ? e : new ApiError(0, 'OPDBUS_ERR_INTERNAL', String(e))),
    );
  };
  const snaps = [...(list.data?.snapshots ?? [])].reverse();
  return html`<${Page} title="Snapshots">
    <${ErrorBox} error=${list.error ?? error} />
    <p>
      ${snaps.length} snapshot${snaps.length === 1 ? '' : 's'} (backend ${list.data?.backend ?? '…'}). Restoring
      one opens it as a document on Plan & apply: you see the plan before anything changes.
    </p>
    <table>
      <thead>
        <tr>
          <th scope="col">Snapshot</th>
          <th scope="col">Status</th>
          <th scope="col">Taken</th>
          <th scope="col">Trigger</th>
          <th scope="col">Plugins</th>
          <th scope="col">Actions</th>
        </tr>
      </thead>
      <tbody>
        ${snaps.map(
          (s) =>
            html`<tr>
              <td><code>${s.id}</code></td>
              <td>
                <span class=${`badge ${s.status === 'ok' ? 'committed' : 'failed'}`}>${s.status}</span
                >${s.problem ? html` ${s.problem}` : null}
              </td>
              <td>${ago(s.createdAt)}</td>
              <td>
                ${s.trigger?.kind ?? ''} ${s.trigger?.txId ? html`<code>${s.trigger.txId}</code>` : null}
              </td>
              <td>${(s.plugins ?? []).join(', ')}</td>
              <td>
                ${
                  session.scope === 'write' && s.status === 'ok'
                    ? html`<button
                        type="button"
                        onClick=${() => restore(s.id)}
                        aria-label=${`Restore snapshot ${s.id} as a plan`}
                      >
                        Restore as a plan
                      </button>`
                    : null
                }
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
  </${Page}>`;
}
