import { PluginRegistry } from '@opdbus/core';
import { defaultPlugins } from '../plugins.js';
import type { Output } from '../runtime.js';

/** `opdbus schema`: one JSON Schema for the whole state document. */
export function schema(output: Output): number {
  output.out(JSON.stringify(new PluginRegistry(defaultPlugins()).jsonSchema(), null, 2));
  return 0;
}
