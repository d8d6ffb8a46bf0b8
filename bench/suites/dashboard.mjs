// The dashboard's first load: the bytes a browser fetches before the login form shows (index.html,
// app.js, app.css), raw (as opdbusd serves them) and compressed, against the 200 KB budget.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { dashboardAssetsDir } from '@opdbus/dashboard';
import { table } from '../lib.mjs';

export const title = 'dashboard: first load';

const kb = (n) => `${(n / 1000).toFixed(1)} KB`;

export async function run() {
  const dir = dashboardAssetsDir();
  const files = ['index.html', 'assets/app.js', 'assets/app.css'];
  const rows = [];
  const total = { raw: 0, gzip: 0, br: 0 };
  for (const f of files) {
    const bytes = readFileSync(join(dir, f));
    const sizes = {
      raw: bytes.length,
      gzip: gzipSync(bytes, { level: 9 }).length,
      br: brotliCompressSync(bytes).length,
    };
    for (const k of Object.keys(total)) total[k] += sizes[k];
    rows.push([f, kb(sizes.raw), kb(sizes.gzip), kb(sizes.br)]);
  }
  rows.push(['**first load**', `**${kb(total.raw)}**`, `**${kb(total.gzip)}**`, `**${kb(total.br)}**`]);
  return `${table(['file', 'raw', 'gzip -9', 'brotli'], rows)}

The bundle holds preact, htm, uPlot and the pages (esbuild, minified); nothing else is fetched (no CDN, no fonts). Budget of the dashboard issue: < 200 KB compressed. opdbusd serves the files uncompressed, so the raw column is what crosses the wire today.`;
}
