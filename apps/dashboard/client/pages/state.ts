import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { ErrorBox, Page, html, useApi } from '../ui.js';
import type { StateReport } from './types.js';

/** Leaf values of a JSON value by path; arrays of named objects are keyed by name (`links[br0].state`). */
export function flatten(value: unknown, path = '', out = new Map<string, unknown>()): Map<string, unknown> {
  if (Array.isArray(value)) {
    if (value.length === 0) out.set(path, []);
    value.forEach((v: unknown, i) => {
      const name = v !== null && typeof v === 'object' && 'name' in v ? String(v.name) : String(i);
      flatten(v, `${path}[${name}]`, out);
    });
  } else if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) out.set(path, {});
    for (const [k, v] of entries) flatten(v, path === '' ? k : `${path}.${k}`, out);
  } else {
    out.set(path, value);
  }
  return out;
}

const show = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/** State: what each plugin observes, searchable, with the desired value beside it where they differ. */
export function StatePage(): ComponentChildren {
  const state = useApi<StateReport>('/v1/state', [
    'drift',
    'drift.resolved',
    'correction',
    'transaction',
    'reload',
  ]);
  const [query, setQuery] = useState('');
  const [onlyDiff, setOnlyDiff] = useState(false);
  const q = query.trim().toLowerCase();
  const observed = state.data?.observed ?? {};
  const desired = state.data?.desired?.plugins ?? {};
  return html`<${Page} title="State">
    <div class="toolbar">
      <label for="state-search">Search</label>
      <input id="state-search" type="search" placeholder="path or value" value=${query}
        onInput=${(e: Event) => setQuery((e.target as HTMLInputElement).value)} />
      <label><input type="checkbox" checked=${onlyDiff} onChange=${(e: Event) => setOnlyDiff((e.target as HTMLInputElement).checked)} /> only where desired differs</label>
    </div>
    <${ErrorBox} error=${state.error} />
    ${
      Object.keys(observed).length === 0 && state.data !== undefined
        ? html`<p>The desired state names no plugin, so nothing is observed.</p>`
        : null
    }
    ${Object.entries(observed).map(([plugin, value]) => {
      const obs = flatten(value);
      const want = flatten(desired[plugin] ?? {});
      const rows = [...obs.entries()]
        .map(([path, v]) => {
          const d = want.has(path) ? want.get(path) : undefined;
          const differs = want.has(path) && show(d) !== show(v);
          return { path, v, d, differs, declared: want.has(path) };
        })
        .concat(
          [...want.entries()]
            .filter(([path]) => !obs.has(path))
            .map(([path, d]) => ({ path, v: undefined, d, differs: true, declared: true })),
        )
        .filter(
          (r) =>
            (!onlyDiff || r.differs) &&
            (q === '' || `${r.path} ${show(r.v)} ${show(r.d)}`.toLowerCase().includes(q)),
        );
      return html`<h2>${plugin}</h2>
        <table class="state">
          <thead>
            <tr>
              <th scope="col">Path</th>
              <th scope="col">Observed</th>
              <th scope="col">Desired</th>
            </tr>
          </thead>
          <tbody>
            ${rows.slice(0, 500).map(
              (r) =>
                html`<tr class=${r.differs ? 'differs' : ''}>
                  <td><code>${r.path}</code></td>
                  <td>${r.v === undefined ? html`<em>absent</em>` : show(r.v)}</td>
                  <td>
                    ${r.differs ? html`<strong>${r.d === undefined ? '' : show(r.d)}</strong>` : r.declared ? '=' : ''}
                  </td>
                </tr>`,
            )}
          </tbody>
        </table>
        ${rows.length > 500 ? html`<p>${rows.length - 500} more rows: narrow the search.</p>` : null}`;
    })}
  </${Page}>`;
}
