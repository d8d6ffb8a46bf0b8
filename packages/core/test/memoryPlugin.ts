// A plugin over an in-memory "host" (a Map of key → value), for testing the engine itself: it
// implements the full contract honestly, and lets a test make apply fail at a chosen change or
// make the host ignore writes, which is how real hosts misbehave.
import { z } from 'zod';
import { OpdbusError, definePlugin, type Change, type ChangeSpec, type Plugin } from '../src/index.js';

export type Section = Record<string, string | null>;

export interface MemoryHost {
  values: Map<string, string>;
  /** Make apply throw for these keys. */
  failOn: Set<string>;
  /** Writes to these keys are silently ignored (verification must catch it). */
  sticky: Set<string>;
  /** Restore of these keys throws. */
  failRestore: Set<string>;
  /** Applied changes, in order. */
  log: string[];
  /** Per key, keys it depends on (to test ordering). */
  deps: Map<string, string[]>;
  /** Per key, another key and the value a write of it sets there too (as the kernel does). */
  sideEffects: Map<string, [key: string, value: string]>;
}

export function memoryHost(initial: Record<string, string> = {}): MemoryHost {
  return {
    values: new Map(Object.entries(initial)),
    failOn: new Set(),
    sticky: new Set(),
    failRestore: new Set(),
    log: [],
    deps: new Map(),
    sideEffects: new Map(),
  };
}

export function memoryPlugin(
  host: MemoryHost,
  name = 'mem',
): Plugin<Section, { values: Record<string, string | null> }> {
  return definePlugin<Section, { values: Record<string, string | null> }>({
    name,
    version: '1.0.0',
    description: 'in-memory test plugin',
    schema: z.record(z.string().regex(/^[a-z0-9.]+$/), z.string().nullable()),
    probe: () => Promise.resolve({ available: true }),
    query(_ctx, options) {
      const out: Section = {};
      if (options?.scope)
        for (const key of Object.keys(options.scope)) out[key] = host.values.get(key) ?? null;
      else for (const [k, v] of host.values) out[k] = v;
      return Promise.resolve(out);
    },
    diff(desired, observed) {
      const changes: ChangeSpec[] = [];
      for (const [key, want] of Object.entries(desired)) {
        const have = observed[key] ?? null;
        if (have === want) continue;
        changes.push({
          resource: key,
          op: have === null ? 'create' : want === null ? 'delete' : 'update',
          before: have,
          after: want,
          dependsOn: host.deps.get(key) ?? [],
          ...(key.startsWith('risky.') ? { risk: { reason: `${key} is the management link` } } : {}),
        });
      }
      return changes;
    },
    apply(change: Change) {
      if (host.failOn.has(change.resource)) {
        return Promise.reject(
          new OpdbusError('OPDBUS_ERR_TEST_APPLY', `injected failure on ${change.resource}`),
        );
      }
      host.log.push(`${change.op} ${change.resource}`);
      if (host.sticky.has(change.resource)) return Promise.resolve();
      if (change.after === null) host.values.delete(change.resource);
      else host.values.set(change.resource, String(change.after));
      const effect = host.sideEffects.get(change.resource);
      if (effect !== undefined) host.values.set(effect[0], effect[1]);
      return Promise.resolve();
    },
    checkpoint(_ctx, changes) {
      const values: Record<string, string | null> = {};
      for (const c of changes) values[c.resource] = host.values.get(c.resource) ?? null;
      return Promise.resolve({ values });
    },
    restore(token) {
      for (const [key, value] of Object.entries(token.values)) {
        if (host.failRestore.has(key)) return Promise.reject(new Error(`injected restore failure on ${key}`));
        if (value === null) host.values.delete(key);
        else host.values.set(key, value);
      }
      return Promise.resolve();
    },
  });
}
