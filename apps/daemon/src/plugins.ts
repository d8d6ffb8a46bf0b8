import type { AnyPlugin } from '@opdbus/core';
import { builtinPlugins } from '@opdbus/runtime';

/** What decides the plugin set: `--plugin SPEC` and `--config FILE` (loaded by @opdbus/runtime when it can). */
export interface PluginSelection {
  plugin?: string[];
  config?: string;
}

/**
 * The plugins the daemon registers. Until @opdbus/runtime loads plugin packages (`--plugin`,
 * `OPDBUS_PLUGINS`, `plugins:` in the config file), this is the built-in set; it is the one place
 * that changes when it does.
 */
export function resolvePlugins(_selection: PluginSelection = {}): AnyPlugin[] {
  return builtinPlugins();
}
