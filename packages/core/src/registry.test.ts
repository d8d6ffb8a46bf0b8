import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { isOpdbusError } from './errors.js';
import { definePlugin } from './plugin.js';
import { PluginRegistry } from './registry.js';

const schema = z.strictObject({ enabled: z.boolean().optional() });
const plugin = (name: string) =>
  definePlugin<z.output<typeof schema>, null>({
    name,
    version: '1.2.3',
    description: `${name} plugin`,
    schema,
    probe: () => Promise.resolve({ available: true }),
    query: () => Promise.resolve({}),
    diff: () => [],
    apply: () => Promise.resolve(),
    checkpoint: () => Promise.resolve(null),
    restore: () => Promise.resolve(),
  });

describe('PluginRegistry', () => {
  it('checks the contract at registration and names every problem', () => {
    const bad = { name: 'Bad Name', version: 'one', schema: {}, probe: 1, query: () => undefined };
    try {
      new PluginRegistry([bad]);
      expect.unreachable();
    } catch (err) {
      expect(isOpdbusError(err, 'OPDBUS_ERR_PLUGIN_INVALID')).toBe(true);
      const message = (err as Error).message;
      for (const part of [
        'name must match',
        'version must be semver',
        'description',
        'schema must be a zod schema',
        'probe must be a function',
        'diff must be a function',
        'apply must be a function',
        'checkpoint must be a function',
        'restore must be a function',
      ]) {
        expect(message).toContain(part);
      }
    }
    expect(() => new PluginRegistry([null])).toThrow(/must be an object/);
    expect(() => new PluginRegistry([{ ...plugin('x'), watch: 'yes' }])).toThrow(
      /watch, when present, must be a function/,
    );
  });

  it('refuses duplicates', () => {
    expect(() => new PluginRegistry([plugin('a'), plugin('a')])).toThrow(
      expect.objectContaining({ code: 'OPDBUS_ERR_PLUGIN_DUPLICATE' }),
    );
  });

  it('names registered plugins when one is unknown', () => {
    const registry = new PluginRegistry([plugin('a'), plugin('b')]);
    expect(() => registry.require('c')).toThrow(/Unknown plugin "c"; registered plugins: a, b/);
  });

  it('composes one JSON Schema from the plugins', () => {
    const schema = new PluginRegistry([plugin('a'), plugin('b')]).jsonSchema() as {
      properties: {
        version: unknown;
        plugins: {
          properties: Record<string, { additionalProperties?: boolean; description?: string }>;
          additionalProperties: boolean;
        };
      };
      required: string[];
      additionalProperties: boolean;
    };
    expect(schema.required).toEqual(['version', 'plugins']);
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties.plugins.properties)).toEqual(['a', 'b']);
    expect(schema.properties.plugins.additionalProperties).toBe(false);
    expect(schema.properties.plugins.properties.a?.description).toBe('a plugin');
    expect(schema.properties.plugins.properties.a?.additionalProperties).toBe(false);
  });
});
