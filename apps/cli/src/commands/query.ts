import { stringifyStateDocument } from '@opdbus/core';
import { createEngine, recoverFirst, type GlobalOptions, type Output } from '../runtime.js';

export interface QueryOptions {
  plugin?: string[];
  showSecrets?: boolean;
}

/** `opdbus query`: the observed state as a state document. */
export async function query(global: GlobalOptions, options: QueryOptions, output: Output): Promise<number> {
  const engine = createEngine(global);
  await recoverFirst(engine, output);
  const plugins = await engine.query(options.plugin, { showSecrets: options.showSecrets === true });
  if (global.json) output.out(JSON.stringify({ version: 1, plugins }, null, 2));
  else output.out(stringifyStateDocument(plugins));
  return 0;
}
