// Planning: what plugins' `expand` contribute to a document, and the ordered plan of changes that
// takes the host from what it is to what the document says. Nothing here changes the host.
import type { Change } from '../change.js';
import { formatPath, type StateDocument } from '../document.js';
import { OpdbusError, toOpdbusError } from '../errors.js';
import { canonicalJson } from '../json.js';
import { limits, quoteValue } from '../limits.js';
import { createPlan } from '../planner.js';
import type { Expansion, PlanNote } from '../plugin.js';
import type { EngineCore } from './core.js';
import { diffPlugin, pluginFacts, queryPlugin, requireAvailable } from './pluginCalls.js';
import type { PlanResult } from './types.js';

/** Query what the document names and compute the ordered plan that takes the host there. */
export async function planDocument(core: EngineCore, doc: StateDocument): Promise<PlanResult> {
  const { desired: sections, notes } = await expandDocument(core, doc);
  const observed: Record<string, unknown> = {};
  const changes: Change[] = [];
  for (const [name, desired] of Object.entries(sections)) {
    if (desired === undefined) continue;
    const plugin = core.registry.require(name);
    await requireAvailable(core, plugin);
    observed[name] = await queryPlugin(core, plugin, desired);
    const facts = await pluginFacts(core, plugin, observed[name]);
    changes.push(...diffPlugin(plugin, desired, observed[name], facts));
  }
  if (changes.length > limits.planChanges) {
    throw new OpdbusError(
      'OPDBUS_ERR_LIMIT_EXCEEDED',
      `${doc.source}: the plan has ${changes.length} changes; one transaction holds at most ${limits.planChanges}. Apply the document in parts.`,
      { data: { file: doc.source, limit: 'planChanges', max: limits.planChanges, actual: changes.length } },
    );
  }
  const plan = createPlan(changes);
  core.events.publish({
    type: 'plan.created',
    planHash: plan.hash,
    changes: plan.changes.length,
    plugins: [...new Set(plan.changes.map((c) => c.plugin))],
  });
  return { plan, observed, desired: sections, notes };
}

/**
 * The document's sections with what plugins' `expand` contribute merged in, in registration
 * order. A contributed value that contradicts the document is `OPDBUS_ERR_PLAN_CONFLICT`; a
 * merged section that its plugin's schema refuses is `OPDBUS_ERR_STATE_INVALID`.
 */
export async function expandDocument(
  core: EngineCore,
  doc: StateDocument,
): Promise<{ desired: Record<string, unknown>; notes: PlanNote[] }> {
  const merged: Record<string, unknown> = { ...doc.plugins };
  const notes: PlanNote[] = [];
  const touched = new Set<string>();
  for (const [name, section] of Object.entries(doc.plugins)) {
    const plugin = core.registry.require(name);
    if (section === undefined || plugin.expand === undefined) continue;
    await requireAvailable(core, plugin);
    let expansion: Expansion;
    try {
      expansion = await plugin.expand(section, core.context(name));
    } catch (err) {
      throw toOpdbusError(err, 'OPDBUS_ERR_PLUGIN_FAILED', `Plugin "${name}" failed to expand its section`, {
        plugin: name,
        operation: 'expand',
      });
    }
    for (const [target, fragment] of Object.entries(expansion.sections)) {
      core.registry.require(target);
      merged[target] = mergeFragment(merged[target], fragment, ['plugins', target], name, doc.source);
      touched.add(target);
    }
    notes.push(...(expansion.notes ?? []));
  }
  for (const target of touched) merged[target] = validSection(core, doc, target, merged[target]);
  const ordered: Record<string, unknown> = {};
  for (const name of core.registry.names()) if (merged[name] !== undefined) ordered[name] = merged[name];
  return { desired: ordered, notes };
}

/** A section with contributions merged in, parsed by its plugin's schema (`OPDBUS_ERR_STATE_INVALID` if refused). */
function validSection(core: EngineCore, doc: StateDocument, target: string, section: unknown): unknown {
  const plugin = core.registry.require(target);
  const parsed = plugin.schema.safeParse(section);
  if (!parsed.success) {
    const issues = parsed.error.issues.map(
      (i) => `${formatPath(['plugins', target, ...i.path])}: ${i.message}`,
    );
    throw new OpdbusError(
      'OPDBUS_ERR_STATE_INVALID',
      `${doc.source}: the "${target}" section, with what other plugins contributed, is not valid:\n  ${issues.join('\n  ')}`,
      { data: { file: doc.source, plugin: target, issues } },
    );
  }
  return parsed.data;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Deep-merge a fragment a plugin contributes into a section: objects merge key by key; any
 * other value (scalars, arrays) must equal what is already there (`OPDBUS_ERR_PLAN_CONFLICT`
 * otherwise, naming `source`, the path and the `contributor`).
 */
export function mergeFragment(
  base: unknown,
  fragment: unknown,
  path: (string | number)[],
  contributor: string,
  source: string,
): unknown {
  if (base === undefined) return fragment;
  if (isPlainObject(base) && isPlainObject(fragment)) {
    const out: Record<string, unknown> = { ...base };
    for (const [key, value] of Object.entries(fragment))
      out[key] = mergeFragment(base[key], value, [...path, key], contributor, source);
    return out;
  }
  if (canonicalJson(base) === canonicalJson(fragment)) return base;
  const where = formatPath(path);
  throw new OpdbusError(
    'OPDBUS_ERR_PLAN_CONFLICT',
    `${source}: ${where} is ${quoteValue(base)}, but the "${contributor}" section derives ${quoteValue(fragment)} for it; remove one of the two.`,
    { data: { file: source, path: where, contributor, declared: base, derived: fragment } },
  );
}
