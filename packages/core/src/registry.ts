import { z } from 'zod';
import { OpdbusError } from './errors.js';
import { assertPlugin, type AnyPlugin } from './plugin.js';

/**
 * The set of plugins an application works with. Registration checks each plugin against the
 * contract and refuses duplicates; the registry composes the plugins' schemas into the schema of
 * the whole state document.
 */
export class PluginRegistry {
  readonly #plugins = new Map<string, AnyPlugin>();

  constructor(plugins: Iterable<unknown> = []) {
    for (const plugin of plugins) this.register(plugin);
  }

  /** Register a plugin; throws `OPDBUS_ERR_PLUGIN_INVALID` or `OPDBUS_ERR_PLUGIN_DUPLICATE`. */
  register(plugin: unknown): this {
    const checked = assertPlugin(plugin);
    if (this.#plugins.has(checked.name)) {
      throw new OpdbusError(
        'OPDBUS_ERR_PLUGIN_DUPLICATE',
        `A plugin named "${checked.name}" is already registered.`,
        {
          data: { plugin: checked.name },
        },
      );
    }
    this.#plugins.set(checked.name, checked);
    return this;
  }

  /** The plugin with this name, or undefined. */
  get(name: string): AnyPlugin | undefined {
    return this.#plugins.get(name);
  }

  /** The plugin with this name; throws `OPDBUS_ERR_UNKNOWN_PLUGIN` naming the registered ones. */
  require(name: string): AnyPlugin {
    const plugin = this.#plugins.get(name);
    if (plugin === undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_UNKNOWN_PLUGIN',
        `Unknown plugin "${name}"; registered plugins: ${this.names().join(', ') || '(none)'}.`,
        {
          data: { plugin: name, registered: this.names() },
        },
      );
    }
    return plugin;
  }

  /** Registered plugin names, in registration order. */
  names(): string[] {
    return [...this.#plugins.keys()];
  }

  /** Registered plugins, in registration order. */
  list(): AnyPlugin[] {
    return [...this.#plugins.values()];
  }

  /** The zod schema of a whole state document with these plugins. */
  documentSchema(): z.ZodType<{ version: 1; plugins: Record<string, unknown> }> {
    const sections: Record<string, z.ZodType> = {};
    for (const plugin of this.#plugins.values()) {
      sections[plugin.name] = plugin.schema.optional().describe(plugin.description);
    }
    return z.strictObject({
      version: z.literal(1).describe('Version of the state document format. Always 1.'),
      plugins: z
        .strictObject(sections)
        .describe('One section per plugin. Only what is named here is managed.'),
    });
  }

  /** One JSON Schema (draft 2020-12) for the whole state document, for editors and docs. */
  jsonSchema(): Record<string, unknown> {
    const schema = z.toJSONSchema(this.documentSchema(), { io: 'input', unrepresentable: 'any' }) as Record<
      string,
      unknown
    >;
    return {
      ...schema,
      $id: 'https://opdbus.dev/schema/state-v1.json',
      title: 'op-dbus state document',
      description: 'The desired state of a Linux host, one section per plugin.',
    };
  }
}
