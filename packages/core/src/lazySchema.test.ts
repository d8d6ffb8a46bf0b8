import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { OpdbusError } from './errors.js';
import { isLazySchema, lazySchema } from './lazySchema.js';
import { assertPlugin, definePlugin } from './plugin.js';
import { PluginRegistry } from './registry.js';

describe('lazySchema', () => {
  it('builds the schema once, at its first use, and stands for it everywhere', () => {
    let builds = 0;
    const port = lazySchema(() => {
      builds += 1;
      return z.number().int().min(1).max(65535);
    });
    const entry = lazySchema(() => z.strictObject({ name: z.string(), port: port.optional() }));
    expect(builds).toBe(0);
    expect(isLazySchema(entry)).toBe(true);
    expect(entry.safeParse({ name: 'ssh', port: 22 }).success).toBe(true);
    expect(builds).toBe(1);
    const bad = entry.safeParse({ name: 'ssh', port: 0, extra: true });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.map((i) => i.path.join('.')).sort()).toEqual(['', 'port']);
    expect(z.array(entry).parse([{ name: 'a' }])).toEqual([{ name: 'a' }]);
    expect(entry).toBeInstanceOf(z.ZodType);
    expect(entry.optional().parse(undefined)).toBeUndefined();
    expect(entry.describe('an entry').description).toBe('an entry');
    expect(z.toJSONSchema(entry)).toMatchObject({
      type: 'object',
      required: ['name'],
      additionalProperties: false,
      properties: { port: { type: 'integer', minimum: 1, maximum: 65535 } },
    });
    expect(builds).toBe(1);
    expect(isLazySchema(z.string())).toBe(false);
  });

  it('keeps what the built schema says in its JSON Schema: descriptions, and wrappers (optional, default, pipe)', () => {
    const state = lazySchema(() => z.literal('absent').optional().describe('`absent` deletes it.'));
    const port = lazySchema(() => z.number().int().default(22).describe('The port.'));
    const name = lazySchema(() => z.string().describe('A name.'));
    const size = lazySchema(() => z.string().transform((s) => s.length));
    const entry = lazySchema(() =>
      z
        .strictObject({ name, state, port, size, alias: name.describe('Another name.') })
        .describe('An entry.'),
    );
    expect(entry.description).toBe('An entry.');
    expect(z.toJSONSchema(entry, { io: 'input' })).toMatchObject({
      description: 'An entry.',
      required: ['name', 'size', 'alias'],
      properties: {
        name: { type: 'string', description: 'A name.' },
        state: { type: 'string', const: 'absent', description: '`absent` deletes it.' },
        port: { type: 'integer', default: 22, description: 'The port.' },
        size: { type: 'string' },
        alias: { type: 'string', description: 'Another name.' },
      },
    });
    // The same schemas, met again in another conversion and inside a wrapper made from them.
    expect(z.toJSONSchema(z.array(state.optional()), { io: 'input' })).toMatchObject({
      items: { type: 'string', const: 'absent' },
    });
    expect(entry.safeParse({ name: 'a', size: 'xyz', alias: 'b' }).data).toEqual({
      name: 'a',
      port: 22,
      size: 3,
      alias: 'b',
    });
  });

  it('does not build a plugin schema when the plugin is checked or registered', () => {
    let built = false;
    const schema = lazySchema(() => {
      built = true;
      return z.strictObject({ on: z.boolean().optional() });
    });
    const plugin = definePlugin({
      name: 'lazy',
      version: '1.0.0',
      description: 'a plugin with a lazy schema',
      schema,
      probe: () => Promise.resolve({ available: true }),
      query: () => Promise.resolve({}),
      diff: () => [],
      apply: () => Promise.resolve(),
      checkpoint: () => Promise.resolve(null),
      restore: () => Promise.resolve(),
    });
    const registry = new PluginRegistry([assertPlugin(plugin)]);
    expect(built).toBe(false);
    expect(registry.jsonSchema()).toMatchObject({ properties: { plugins: { properties: { lazy: {} } } } });
    expect(built).toBe(true);
  });

  it('says what is wrong when the builder returns no schema', () => {
    const broken = lazySchema(() => ({ parse: () => 1 }) as unknown as z.ZodString);
    expect(() => broken.parse('x')).toThrow(OpdbusError);
    expect(() => broken.parse('x')).toThrow(/not a zod schema/);
  });
});
