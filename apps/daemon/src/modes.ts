import { readFileSync } from 'node:fs';
import { OpdbusError } from '@opdbus/core';
import { parse } from 'yaml';
import { z } from 'zod';

/** What the daemon does about drift: report it, correct it, or not look at it. */
export type Mode = 'observe' | 'enforce' | 'ignore';

/** The modes. */
export const modes: readonly Mode[] = ['observe', 'enforce', 'ignore'];

const modeSchema = z.enum(['observe', 'enforce', 'ignore']);

/**
 * A rule: a plugin name (`network`), a resource key (`network:link/br0`) or a key pattern with `*`
 * (`network:link/br-*`, `sysctl:net.ipv4.*`) and its mode.
 */
export interface ModeRule {
  pattern: string;
  mode: Mode;
}

const patternSyntax = /^[a-z][a-z0-9-]{0,62}(:.+)?$/;

function compile(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`);
}

/**
 * Modes daemon-wide, per plugin and per resource. The most specific rule wins: an exact resource
 * key, then the pattern with the most literal characters, then the plugin's rule, then the
 * daemon-wide mode.
 *
 * @example
 * ```ts
 * const m = new ModePolicy('enforce', [{ pattern: 'network:link/br-lab*', mode: 'observe' }]);
 * m.of('network', 'link/br-lab1'); // 'observe'
 * m.of('network', 'link/br0'); // 'enforce'
 * ```
 */
export class ModePolicy {
  readonly #rules: { rule: ModeRule; re: RegExp; weight: number }[];

  constructor(
    /** The daemon-wide mode. */
    readonly fallback: Mode,
    rules: readonly ModeRule[] = [],
  ) {
    this.#rules = rules.map((rule) => {
      if (!patternSyntax.test(rule.pattern)) {
        throw new OpdbusError(
          'OPDBUS_ERR_USAGE',
          `Mode rule "${rule.pattern}": write PLUGIN, PLUGIN:RESOURCE or a pattern with * (e.g. network:link/br-*).`,
          { data: { pattern: rule.pattern } },
        );
      }
      const exact = !rule.pattern.includes('*');
      const scoped = rule.pattern.includes(':');
      const weight = !scoped ? 0 : exact ? Number.MAX_SAFE_INTEGER : rule.pattern.replace(/\*/g, '').length;
      return { rule, re: compile(scoped ? rule.pattern : `${rule.pattern}:*`), weight };
    });
  }

  /** The rules, as given. */
  get rules(): ModeRule[] {
    return this.#rules.map((r) => r.rule);
  }

  /** The mode of a plugin's resource. */
  of(plugin: string, resource: string): Mode {
    const key = `${plugin}:${resource}`;
    let best: { mode: Mode; weight: number } | undefined;
    for (const { rule, re, weight } of this.#rules) {
      if (!re.test(key)) continue;
      if (best === undefined || weight >= best.weight) best = { mode: rule.mode, weight };
    }
    return best?.mode ?? this.fallback;
  }

  /** Whether every resource of a plugin is ignored (then it is not watched at all). */
  ignoresPlugin(plugin: string): boolean {
    const own = this.#rules.filter(
      (r) => r.rule.pattern === plugin || r.rule.pattern.startsWith(`${plugin}:`),
    );
    const pluginMode = own.filter((r) => r.weight === 0).at(-1)?.rule.mode ?? this.fallback;
    return pluginMode === 'ignore' && own.every((r) => r.rule.mode === 'ignore');
  }
}

/** Parse `PATTERN=MODE` (the `--mode-for` option). */
export function parseModeRule(text: string): ModeRule {
  const at = text.lastIndexOf('=');
  const mode = modeSchema.safeParse(text.slice(at + 1));
  if (at <= 0 || !mode.success) {
    throw new OpdbusError(
      'OPDBUS_ERR_USAGE',
      `--mode-for "${text}": write PATTERN=MODE with MODE observe, enforce or ignore (e.g. network:link/br0=observe).`,
      { data: { value: text } },
    );
  }
  return { pattern: text.slice(0, at), mode: mode.data };
}

const modesFileSchema = z.strictObject({
  mode: modeSchema.optional(),
  modes: z.record(z.string(), modeSchema).optional(),
});

/**
 * Read a modes file (YAML or JSON): `mode:` daemon-wide and `modes:` a map of PATTERN → MODE.
 *
 * ```yaml
 * mode: enforce
 * modes:
 *   sysctl: observe
 *   "network:link/br-lab*": ignore
 * ```
 */
export function loadModesFile(file: string): { mode?: Mode; rules: ModeRule[] } {
  let value: unknown;
  try {
    value = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_USAGE',
      `${file}: cannot read the modes file: ${(err as Error).message}`,
      {
        data: { file },
        cause: err,
      },
    );
  }
  const parsed = modesFileSchema.safeParse(value ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new OpdbusError(
      'OPDBUS_ERR_USAGE',
      `${file}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}; write mode: MODE and modes: { PATTERN: MODE }.`,
      { data: { file, path: issue?.path.join('.') } },
    );
  }
  return {
    ...(parsed.data.mode === undefined ? {} : { mode: parsed.data.mode }),
    rules: Object.entries(parsed.data.modes ?? {}).map(([pattern, mode]) => ({ pattern, mode })),
  };
}
