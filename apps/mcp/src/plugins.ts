import type { AnyPlugin, Logger } from '@opdbus/core';
import { resolvePlugins as resolveRuntimePlugins } from '@opdbus/runtime';

/** What selects the plugins: `--plugin SPEC` (repeatable) and `--config FILE`, as for the CLI. */
export interface PluginSelection {
  plugin?: string[];
  config?: string;
}

/**
 * The plugins opdbus-mcp registers: the built-in plugins and the plugin packages named by `--plugin`,
 * `OPDBUS_PLUGINS` and `plugins:` in the configuration file, through `resolvePlugins` of
 * @opdbus/runtime, so that opdbus-mcp loads exactly what the CLI loads. A refused package is logged
 * (its error names the package and why) and the others load.
 */
export async function resolvePlugins(selection: PluginSelection, logger?: Logger): Promise<AnyPlugin[]> {
  const { plugins, refusals } = await resolveRuntimePlugins({
    ...(selection.plugin === undefined ? {} : { plugin: selection.plugin }),
    ...(selection.config === undefined ? {} : { config: selection.config }),
  });
  for (const err of refusals)
    logger?.error({ err, code: err.code }, `plugin package refused: ${err.message}`);
  return plugins;
}
