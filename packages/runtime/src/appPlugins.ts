import type { AnyPlugin, Logger } from '@opdbus/core';
import { resolvePlugins } from './config.js';

/** What selects the plugins of a long-running app: `--plugin SPEC` (repeatable) and `--config FILE`, as for the CLI. */
export interface PluginSelection {
  plugin?: readonly string[];
  config?: string;
}

/**
 * The plugins opdbusd and opdbus-mcp register: the built-in plugins and the plugin packages named
 * by `--plugin`, `OPDBUS_PLUGINS` and `plugins:` in the configuration file (see
 * {@link resolvePlugins}), so a server loads exactly what the CLI loads. With `builtinNames`, only
 * those built-in plugins are imported (a server loads what its desired state names; see
 * `loadBuiltinPlugins`). A refused package is logged (its error names the package and why) and the
 * others load.
 *
 * @example
 * ```ts
 * const plugins = await resolveAppPlugins({ plugin: [] }, undefined, ['network', 'sysctl']);
 * ```
 */
export async function resolveAppPlugins(
  selection: PluginSelection,
  logger?: Logger,
  builtinNames?: readonly string[],
): Promise<AnyPlugin[]> {
  const { plugins, refusals } = await resolvePlugins({
    ...(selection.plugin === undefined ? {} : { plugin: selection.plugin }),
    ...(selection.config === undefined ? {} : { config: selection.config }),
    ...(builtinNames === undefined ? {} : { builtinNames }),
  });
  for (const err of refusals)
    logger?.error({ err, code: err.code }, `plugin package refused: ${err.message}`);
  return plugins;
}
