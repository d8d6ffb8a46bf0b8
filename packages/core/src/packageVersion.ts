import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OpdbusError } from './errors.js';

/**
 * The `version` of the package a module belongs to: the nearest package.json above it that has
 * one. A plugin's `version` comes from here, so that it is bumped in one place (package.json, by
 * changesets) and works from `src/` as from `dist/`.
 *
 * @example
 * ```ts
 * export const motdPlugin = definePlugin({ name: 'motd', version: packageVersion(import.meta.url), ... });
 * ```
 */
export function packageVersion(moduleUrl: string | URL): string {
  const start = dirname(fileURLToPath(moduleUrl));
  for (let dir = start; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const { version } = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
      if (typeof version === 'string') return version;
    }
    if (dirname(dir) === dir)
      throw new OpdbusError(
        'OPDBUS_ERR_PLUGIN_INVALID',
        `No package.json with a version above ${start}; a plugin's version comes from its package's package.json.`,
        { data: { path: start } },
      );
  }
}
