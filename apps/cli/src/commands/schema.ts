import { PluginRegistry } from '@opdbus/core';
import { loadBuiltinPlugins } from '@opdbus/runtime';
import type { Output } from '../runtime.js';

/** `opdbus schema`: one JSON Schema for the whole state document. */
export async function schema(output: Output): Promise<number> {
  output.out(JSON.stringify(new PluginRegistry(await loadBuiltinPlugins()).jsonSchema(), null, 2));
  return 0;
}
