import type { Daemon } from './daemon.js';

const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The page at `/`: what the daemon is doing, without anything a token protects (no resource
 * names, no values). The dashboard app replaces it.
 */
export function statusPage(daemon: Daemon, version: string): string {
  const d = daemon.describe();
  const rows: [string, string][] = [
    ['status', d.status],
    ['mode', daemon.options.mode],
    ['resources drifted', String(d.drift)],
    ['resources on hold', String(d.holds)],
    ['running since', daemon.startedAt],
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>opdbusd</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse}td{padding:.3rem 1rem;border-bottom:1px solid #ddd}td:first-child{color:#666}</style>
</head><body><h1>opdbusd ${escape(version)}</h1>
<table>${rows.map(([k, v]) => `<tr><td>${escape(k)}</td><td>${escape(v)}</td></tr>`).join('')}</table>
<p>The API (with a token): <code>/v1/state</code>, <code>/v1/drift</code>, <code>/v1/events</code>, <code>/metrics</code>; its description: <a href="/openapi.json">/openapi.json</a>.</p>
</body></html>
`;
}
