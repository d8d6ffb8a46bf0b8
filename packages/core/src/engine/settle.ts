// Verification: query again until the host holds what was asked, giving the kernel and daemons
// time to settle. Used after applying (against the desired state) and after restoring (against the
// state observed before).
import { setTimeout as delay } from 'node:timers/promises';
import { resourceKey, type Change } from '../change.js';
import type { JsonValue } from '../json.js';
import type { TargetSpec } from '../plugin.js';
import type { EngineCore } from './core.js';
import { diffPlugin, queryPlugin } from './pluginCalls.js';

/** What {@link settle} found at its last attempt. */
export interface Settled {
  /** The changes still needed (of the resources counted); empty when the host holds the state. */
  residual: Change[];
  attempts: number;
  /** The plugins' observed sections at the last attempt. */
  observed: Record<string, JsonValue>;
}

/**
 * Query the plugins until the diff against `expected`, of the resources `counts` selects (keys
 * `plugin:resource`), is empty or the attempts run out, waiting twice as long each time (the
 * engine's `verify` options).
 */
export async function settle(
  core: EngineCore,
  txId: string,
  target: TargetSpec,
  plugins: readonly string[],
  expected: Record<string, JsonValue>,
  counts: (key: string) => boolean,
): Promise<Settled> {
  let wait = core.verify.initialDelayMs;
  let residual: Change[] = [];
  let observed: Record<string, JsonValue> = {};
  for (let attempt = 1; attempt <= core.verify.attempts; attempt++) {
    residual = [];
    observed = {};
    for (const name of plugins) {
      const plugin = core.registry.require(name);
      const now = await queryPlugin(core, plugin, expected[name], { txId }, target);
      observed[name] = now as JsonValue;
      residual.push(...diffPlugin(plugin, expected[name], now).filter((c) => counts(resourceKey(c))));
    }
    core.events.publish({ type: 'verify.attempt', txId, attempt, residual: residual.length });
    if (residual.length === 0) return { residual, attempts: attempt, observed };
    if (attempt < core.verify.attempts) {
      await delay(wait);
      wait *= 2;
    }
  }
  return { residual, attempts: core.verify.attempts, observed };
}
