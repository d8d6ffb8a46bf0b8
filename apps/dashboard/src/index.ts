/**
 * @opdbus/dashboard: the op-dbus dashboard, a small browser client (preact + htm + uPlot, bundled
 * at build time with esbuild, nothing downloaded at run time) that `opdbusd` serves on its listeners.
 *
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The files of the built dashboard, relative to {@link dashboardAssetsDir}. */
export const dashboardFiles = {
  /** The page every route of the dashboard answers with. */
  index: 'index.html',
} as const;

/**
 * The folder that holds the built dashboard (`index.html` and `assets/`), shipped in this
 * package's `dist/`. Serve it as static files; the page talks to the daemon's `/v1` API on the
 * same origin. Throws when the package was not built.
 */
export function dashboardAssetsDir(): string {
  // src/index.ts and dist/index.js are both one level below the package root.
  const dir = fileURLToPath(new URL('../dist/www/', import.meta.url));
  if (!existsSync(`${dir}${dashboardFiles.index}`))
    throw new Error(`The dashboard is not built (${dir} has no ${dashboardFiles.index}): run pnpm build.`);
  return dir;
}
