// preact + htm: components as tagged templates, no build step for the templates themselves.
import { html as boundHtml } from 'htm/preact';
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, api, onEvent, type DaemonEvent } from './api.js';

/** The template tag. */
export const html = boundHtml;

/** Load JSON from the API, reload on demand and (optionally) on daemon events of some types. */
export function useApi<T>(
  path: string | undefined,
  reloadOn: readonly string[] = [],
): { data: T | undefined; error: ApiError | undefined; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    if (path === undefined) return;
    let live = true;
    api<T>(path).then(
      (d) => {
        if (!live) return;
        setData(d);
        setError(undefined);
      },
      (e: unknown) => {
        if (live) setError(e instanceof ApiError ? e : new ApiError(0, 'OPDBUS_ERR_INTERNAL', String(e)));
      },
    );
    return () => {
      live = false;
    };
  }, [path, tick]);
  useEffect(() => {
    if (reloadOn.length === 0) return;
    return onEvent((e: DaemonEvent) => {
      if (reloadOn.includes(e.type)) reload();
    });
  }, [reloadOn.join(','), reload]);
  return { data, error, reload };
}

/** An error as a visible alert. */
export function ErrorBox({ error }: { error: ApiError | Error | undefined }): ComponentChildren {
  if (error === undefined) return null;
  const code = error instanceof ApiError ? `${error.code}: ` : '';
  return html`<p class="error" role="alert">${code}${error.message}</p>`;
}

/** A JSON value for people. */
export function Json({ value }: { value: unknown }): ComponentChildren {
  return html`<pre class="json">${JSON.stringify(value, null, 2)}</pre>`;
}

/** A section heading with the page's title. */
export function Page({
  title,
  children,
}: {
  title: string;
  children?: ComponentChildren;
}): ComponentChildren {
  useEffect(() => {
    document.title = `${title} · opdbusd`;
  }, [title]);
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title" tabindex="-1">${title}</h1>
    ${children}
  </section>`;
}

/** Relative time for people ("12 s ago"). */
export function ago(iso: string | undefined): string {
  if (iso === undefined) return '—';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (Number.isNaN(s)) return iso;
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}
