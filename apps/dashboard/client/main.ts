// The dashboard: a login form, then the pages behind a navigation bar (hash routes, so the daemon
// serves one page and the browser's back button works).
import { render, type ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  ApiError,
  api,
  connectEvents,
  disconnectEvents,
  onConnection,
  useSession,
  type Session,
} from './api.js';
import { AnomaliesPage } from './pages/anomalies.js';
import { ChatPage } from './pages/chat.js';
import { CompliancePage } from './pages/compliance.js';
import { DriftPage } from './pages/drift.js';
import { LedgerPage } from './pages/ledger.js';
import { NumaPage } from './pages/numa.js';
import { OverviewPage } from './pages/overview.js';
import { PlanPage } from './pages/plan.js';
import { SnapshotsPage } from './pages/snapshots.js';
import { StatePage } from './pages/state.js';
import { TransactionsPage } from './pages/transactions.js';
import { ErrorBox, html } from './ui.js';

/** The pages, in the order of the navigation bar. */
const pages: { path: string; title: string; view: (p: { session: Session }) => ComponentChildren }[] = [
  { path: 'overview', title: 'Overview', view: OverviewPage },
  { path: 'state', title: 'State', view: StatePage },
  { path: 'drift', title: 'Drift', view: DriftPage },
  { path: 'plan', title: 'Plan & apply', view: PlanPage },
  { path: 'transactions', title: 'Transactions', view: TransactionsPage },
  { path: 'ledger', title: 'Ledger', view: LedgerPage },
  { path: 'snapshots', title: 'Snapshots', view: SnapshotsPage },
  { path: 'numa', title: 'NUMA', view: NumaPage },
  { path: 'anomalies', title: 'Anomalies', view: AnomaliesPage },
  { path: 'compliance', title: 'Compliance', view: CompliancePage },
  { path: 'chat', title: 'Chat', view: ChatPage },
];

const currentPath = (): string => location.hash.replace(/^#\/?/, '') || 'overview';

function Login({ onLogin }: { onLogin: (s: Session) => void }): ComponentChildren {
  const [token, setToken] = useState('');
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = (e: Event): void => {
    e.preventDefault();
    setBusy(true);
    api<Session>('/v1/session', { method: 'POST', token: token.trim() }).then(
      (s) => {
        setToken('');
        onLogin(s);
      },
      (err: unknown) => {
        setBusy(false);
        setError(err instanceof ApiError ? err : new ApiError(0, 'OPDBUS_ERR_INTERNAL', String(err)));
      },
    );
  };
  return html`<main id="main" class="login">
    <h1>opdbusd</h1>
    <form onSubmit=${submit} aria-describedby="login-help">
      <label for="token">Token</label>
      <input
        id="token"
        name="token"
        type="password"
        autocomplete="current-password"
        required
        value=${token}
        onInput=${(e: Event) => setToken((e.target as HTMLInputElement).value)}
      />
      <p id="login-help" class="help">
        A token from the daemon's token file (<code>--token-file</code>). A read token shows everything and
        changes nothing.
      </p>
      <button type="submit" disabled=${busy}>Log in</button>
    </form>
    <${ErrorBox} error=${error} />
  </main>`;
}

function Shell({ session, onLogout }: { session: Session; onLogout: () => void }): ComponentChildren {
  const [path, setPath] = useState(currentPath());
  const [live, setLive] = useState(false);
  useEffect(() => {
    const change = (): void => setPath(currentPath());
    window.addEventListener('hashchange', change);
    connectEvents();
    const stop = onConnection(setLive);
    return () => {
      window.removeEventListener('hashchange', change);
      stop();
    };
  }, []);
  // After a page change (not the first load), focus moves to the new page's heading.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) first.current = false;
    else document.getElementById('page-title')?.focus();
  }, [path]);
  const page = pages.find((p) => p.path === path) ?? pages[0]!;
  const logout = (): void => {
    void api('/v1/session', { method: 'DELETE' })
      .catch(() => undefined)
      .then(() => {
        disconnectEvents();
        onLogout();
      });
  };
  return html`<a
      class="skip"
      href="#main"
      onClick=${(e: Event) => {
        e.preventDefault();
        document.getElementById('page-title')?.focus();
      }}
      >Skip to content</a
    >
    <header>
      <span class="brand">opdbusd</span>
      <nav aria-label="Pages">
        <ul>
          ${pages.map(
            (p) =>
              html`<li>
                <a href=${`#/${p.path}`} aria-current=${p.path === page.path ? 'page' : undefined}
                  >${p.title}</a
                >
              </li>`,
          )}
        </ul>
      </nav>
      <span class="who">
        <span class=${live ? 'live on' : 'live'} role="status" aria-live="polite"
          >${live ? 'live' : 'offline'}</span
        >
        <span>${session.name} (${session.scope})</span>
        <button type="button" onClick=${logout}>Log out</button>
      </span>
    </header>
    <main id="main"><${page.view} session=${session} /></main>`;
}

function App(): ComponentChildren {
  const [session, setSession] = useState<Session | undefined | null>(undefined);
  useEffect(() => {
    api<Session>('/v1/session').then(
      (s) => setSession(s),
      () => setSession(null),
    );
  }, []);
  useSession(session ?? undefined, () => {
    disconnectEvents();
    setSession(null);
  });
  if (session === undefined) return html`<p class="loading">Loading…</p>`;
  if (session === null) return html`<${Login} onLogin=${setSession} />`;
  return html`<${Shell} session=${session} onLogout=${() => setSession(null)} />`;
}

render(html`<${App} />`, document.getElementById('app')!);
