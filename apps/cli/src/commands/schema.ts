import { PluginRegistry } from '@opdbus/core';
import { commandPlugins, type GlobalOptions, type Output } from '../runtime.js';

/** `opdbus schema`: one JSON Schema for the whole state document (built-in and loaded plugins). */
export async function schema(global: GlobalOptions, output: Output): Promise<number> {
  output.out(
    JSON.stringify(new PluginRegistry(await commandPlugins(global, {}, output)).jsonSchema(), null, 2),
  );
  return 0;
}
