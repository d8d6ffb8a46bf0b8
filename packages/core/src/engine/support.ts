// Helpers of the engine that need none of its state: messages, audit fields and plugin methods.
import { basename } from 'node:path';
import { userInfo } from 'node:os';
import type { AuditRecord } from '../audit.js';
import type { Change, ChangeSpec } from '../change.js';
import { OpdbusError } from '../errors.js';
import type { Actor } from '../journal.js';
import type { AnyPlugin } from '../plugin.js';
import { processStartTime } from '../process.js';

/**
 * A plugin's change specs as the engine, journal and ledger hold them: JSON. Every plugin's values
 * are JSON by the contract, and {@link makeChange} refuses a value that is not.
 */
export function asJsonChanges(specs: readonly ChangeSpec<unknown>[]): ChangeSpec[] {
  return specs as ChangeSpec[];
}

/**
 * A method the engine needs of a plugin that has changes in a plan, bound to it. Only a plugin
 * that bypassed {@link assertPlugin} can lack it (an expansion plugin never has changes).
 */
export function requireMethod<K extends 'apply' | 'checkpoint' | 'restore'>(
  plugin: AnyPlugin,
  method: K,
): NonNullable<AnyPlugin[K]> {
  const fn = plugin[method];
  if (typeof fn !== 'function')
    throw new OpdbusError(
      'OPDBUS_ERR_PLUGIN_INVALID',
      `Plugin "${plugin.name}" has changes in this plan but no ${method} method; a plugin with changes implements query, diff, apply, checkpoint and restore.`,
      { data: { plugin: plugin.name, method } },
    );
  return fn.bind(plugin) as NonNullable<AnyPlugin[K]>;
}

/** The fields every change event carries. */
export function changeEvent(txId: string, change: Change, index: number) {
  return { txId, index, changeId: change.id, plugin: change.plugin, resource: change.resource };
}

/** The first items of a list for a message: never thousands of them. */
export function firstOf(items: readonly string[], n = 10): string {
  return items.length <= n
    ? items.join('; ')
    : `${items.slice(0, n).join('; ')}; and ${items.length - n} more`;
}

/** A message kept in an audit record: at most 4 KiB of it. */
export function clipMessage(text: string): string {
  return text.length <= 4096 ? text : `${text.slice(0, 4096)}… (${text.length} characters)`;
}

/** Only the named sections of an observed state. */
export function scoped(observed: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of names) if (observed[name] !== undefined) out[name] = observed[name];
  return out;
}

/** The process an audit record names: this one (pid, kernel start time, command line). */
export function auditProcess(): AuditRecord['process'] {
  const script = process.argv[1];
  return {
    pid: process.pid,
    startTime: processStartTime(process.pid),
    command: [...(script === undefined ? [] : [basename(script)]), ...process.argv.slice(2)],
  };
}

/** The default actor of an engine: the user this process runs as. */
export function currentUserActor(): Actor {
  let name = 'unknown';
  try {
    name = userInfo().username;
  } catch {
    name = `uid ${process.getuid?.() ?? -1}`;
  }
  return { kind: 'user', name, uid: process.getuid?.() ?? -1, pid: process.pid };
}
