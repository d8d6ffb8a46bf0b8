import { exitCodes } from '../exitCodes.js';
import { formatPlan } from '../format.js';
import { createEngine, recoverFirst, type GlobalOptions, type Output } from '../runtime.js';
import { documentInput, inDocument } from './document.js';

/** `opdbus diff FILE|DIR`: the plan that would take the host to the document. Exit 2 when changes are pending. */
export async function diff(global: GlobalOptions, file: string, output: Output): Promise<number> {
  const input = await documentInput(global, file);
  // Only the plugins the document names are loaded.
  const engine = await createEngine(global, input.plugins);
  const doc = await input.load(engine.registry);
  await recoverFirst(engine, output);
  const { plan, notes } = await inDocument(doc, () => engine.plan(doc));
  if (global.json)
    output.out(JSON.stringify({ ok: true, changes: plan.changes.length, plan, notes }, null, 2));
  else output.out(formatPlan(plan, notes));
  return plan.changes.length === 0 ? exitCodes.OK.code : exitCodes.CHANGES_PENDING.code;
}
