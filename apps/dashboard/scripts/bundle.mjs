// Bundles the browser client into dist/www: index.html, assets/app.js and assets/app.css
// (preact, htm and uPlot included; minified; no source from a CDN, nothing fetched at run time).
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'www');
await rm(out, { recursive: true, force: true });
await mkdir(join(out, 'assets'), { recursive: true });
await build({
  entryPoints: [join(root, 'client', 'main.ts')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  outfile: join(out, 'assets', 'app.js'),
  legalComments: 'none',
  logLevel: 'warning',
});
const uplotCss = await readFile(join(root, 'node_modules', 'uplot', 'dist', 'uPlot.min.css'), 'utf8');
const ownCss = await readFile(join(root, 'client', 'app.css'), 'utf8');
await writeFile(join(out, 'assets', 'app.css'), `${uplotCss}\n${ownCss}`);
await copyFile(join(root, 'client', 'index.html'), join(out, 'index.html'));
