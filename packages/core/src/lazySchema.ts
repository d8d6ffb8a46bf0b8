import { z } from 'zod';
import { OpdbusError } from './errors.js';

/** The schemas {@link lazySchema} made, so that checking a plugin does not build its schema. */
const lazySchemas = new WeakSet<object>();

/**
 * A zod schema that is built at its first use instead of when its module loads: a plugin's
 * schema is dozens of zod objects, and a command that never validates a document of that plugin
 * (`opdbus query`, `opdbus ledger ...`) should not pay for building them, nor for loading zod
 * at all. The result stands for the schema everywhere (`parse`, `safeParse`, `optional()`,
 * `z.array(...)` of it, `z.toJSONSchema`, `instanceof z.ZodType`), with the metadata `build` gave it
 * (`.describe()`, `.meta()`: its description in `opdbus schema`); `build` runs once, at the first
 * property read, and must return a zod schema (else `OPDBUS_ERR_PLUGIN_INVALID`).
 *
 * A schema that others are built from is made lazy too, or built inside their `build`: a
 * top-level `z.string()` still runs when its module loads.
 *
 * @example
 * ```ts
 * import { lazySchema } from '@opdbus/core';
 * import { z } from 'zod';
 *
 * export const pinSchema = lazySchema(() => z.strictObject({ cpus: z.string() }));
 * export type PinSection = z.infer<typeof pinSchema>;
 * ```
 */
export function lazySchema<T extends z.ZodType>(build: () => T): T {
  let built: T | undefined;
  let internals: object | undefined;
  const real = (): T => {
    if (built !== undefined) return built;
    const schema: unknown = build();
    if (typeof schema !== 'object' || schema === null || !('_zod' in schema)) {
      throw new OpdbusError(
        'OPDBUS_ERR_PLUGIN_INVALID',
        `lazySchema: its builder returned ${schema === null ? 'null' : typeof schema}, not a zod schema; return the schema (e.g. () => z.strictObject({...})).`,
      );
    }
    built = schema as T;
    // zod keeps metadata (`.describe()`, `.meta()`) by schema identity: the stand-in carries the
    // built schema's (its id excepted: an id names one schema).
    const meta = z.globalRegistry.get(built);
    if (meta !== undefined) {
      const rest: Record<string, unknown> = { ...meta };
      delete rest.id;
      if (Object.keys(rest).length > 0) z.globalRegistry.add(proxy as T, rest);
    }
    internals = zodInternalsFor(built, proxy);
    return built;
  };
  // Methods run on the schema itself (zod's methods read `this`), each bound once.
  const bound = new Map<PropertyKey, unknown>();
  const proxy: object = new Proxy(Object.create(null) as object, {
    get: (_, key) => {
      const schema = real();
      if (key === '_zod') return internals;
      const value: unknown = Reflect.get(schema, key, schema);
      if (typeof value !== 'function') return value;
      let fn = bound.get(key) as { source: unknown; fn: unknown } | undefined;
      if (fn?.source !== value) bound.set(key, (fn = { source: value, fn: value.bind(schema) as unknown }));
      return fn.fn;
    },
    set: (_, key, value) => Reflect.set(real(), key, value),
    has: (_, key) => key in real(),
    ownKeys: () => Reflect.ownKeys(real()),
    getOwnPropertyDescriptor: (_, key) => {
      const d = Reflect.getOwnPropertyDescriptor(real(), key);
      // The (empty, extensible) target must not be said to hold a non-configurable property.
      return d === undefined ? undefined : { ...d, configurable: true };
    },
    defineProperty: (_, key, d) => Reflect.defineProperty(real(), key, d),
    deleteProperty: (_, key) => Reflect.deleteProperty(real(), key),
    getPrototypeOf: () => Object.getPrototypeOf(real()) as object | null,
  });
  lazySchemas.add(proxy);
  return proxy as T;
}

/** What zod's JSON Schema conversion passes to a schema's own processor: the schemas it has seen. */
interface JsonSchemaContext {
  seen: Map<unknown, unknown>;
}

/**
 * The internals (`_zod`) of a built schema as its stand-in shows them. z.toJSONSchema records
 * each schema it meets by identity (the stand-in, here) and the processors of wrappers (optional,
 * nullable, default, pipe, readonly ...) look themselves up by the built schema: while the built
 * schema's processor runs, it is found under the stand-in's record.
 */
function zodInternalsFor(schema: z.ZodType, standIn: object): object {
  const internals = schema._zod as unknown as Record<string, unknown>;
  const process = internals.processJSONSchema;
  if (typeof process !== 'function') return internals;
  const processAsStandIn = (ctx: JsonSchemaContext, ...rest: unknown[]): unknown => {
    const own = ctx.seen.get(standIn);
    const had = ctx.seen.has(schema);
    const before = ctx.seen.get(schema);
    if (own !== undefined) ctx.seen.set(schema, own);
    try {
      return (process as (...args: unknown[]) => unknown).call(internals, ctx, ...rest);
    } finally {
      if (had) ctx.seen.set(schema, before);
      else ctx.seen.delete(schema);
    }
  };
  return new Proxy(internals, {
    get: (target, key): unknown =>
      key === 'processJSONSchema' ? processAsStandIn : (Reflect.get(target, key) as unknown),
  });
}

/** Whether `value` is a schema made by {@link lazySchema} (built or not): reading it would build it. */
export function isLazySchema(value: unknown): boolean {
  return typeof value === 'object' && value !== null && lazySchemas.has(value);
}
