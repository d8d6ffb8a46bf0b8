import type { AnyPlugin } from '@opdbus/core';
import { builtinPlugins } from '@opdbus/runtime';

/** What selects the plugins: the CLI's `--plugin SPEC` and `--config FILE`. */
export interface PluginSelection {
  plugin?: string[];
  config?: string;
}

/**
 * The plugins opdbus-mcp registers. The shared plugin loader of @opdbus/runtime (packages named
 * with `--plugin`, `OPDBUS_PLUGINS`, `plugins:` in the config file) is wired in here, the one
 * place, so the MCP server loads exactly what the CLI and the daemon load; until then, the
 * built-in set.
 */
export function resolvePlugins(_selection: PluginSelection): Promise<AnyPlugin[]> {
  return Promise.resolve(builtinPlugins());
}
