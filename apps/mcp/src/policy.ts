import { readFileSync } from 'node:fs';
import { OpdbusError, formatPath } from '@opdbus/core';
import { parse } from 'yaml';
import { z } from 'zod';

/** What the policy says about a tool call. */
export type PolicyAction = 'allow' | 'ask' | 'deny';

/** Tools that only read: the read-only default allows them. */
export const readTools = [
  'query',
  'plan',
  'transactions',
  'ledger_entries',
  'ledger_verify',
  'ledger_proof',
  'snapshots_list',
  'numa_topology',
  'snapshots_restore',
  'numa_placement',
  'drift',
  'anomalies',
  'resource',
] as const;

/** Tools that change the host: the read-only default denies them. */
export const writeTools = ['apply', 'confirm', 'rollback'] as const;

/** A tool the policy knows (`resource` stands for reading an MCP resource). */
export type PolicyTool = (typeof readTools)[number] | (typeof writeTools)[number];

const allTools: readonly string[] = [...readTools, ...writeTools];

/** Whether a tool changes the host. */
export function isWriteTool(tool: string): boolean {
  return (writeTools as readonly string[]).includes(tool);
}

const oneOrMany = <T extends z.ZodType>(item: T) =>
  z.union([item, z.array(item).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);

const actionSchema = z.enum(['allow', 'ask', 'deny']);

const ruleSchema = z.strictObject({
  /** Tool names (`*` for all); absent: every tool. */
  tools: oneOrMany(
    z.string().refine((t) => t === '*' || allTools.includes(t), {
      message: `unknown tool; use one of ${allTools.join(', ')} or *`,
    }),
  ).optional(),
  /** Plugin names the call touches; absent: any. */
  plugins: oneOrMany(z.string().min(1)).optional(),
  /** Globs (`*`, `?`) over the resource paths a plan changes (e.g. `link/veth*`) or resource URIs. */
  resources: oneOrMany(z.string().min(1)).optional(),
  /** true: only changes flagged risky (they can cut the management connection); false: only others. */
  risky: z.boolean().optional(),
  action: actionSchema,
  /** Why, shown to the agent when the rule refuses or asks. */
  reason: z.string().max(500).optional(),
});

const policySchema = z.strictObject({
  version: z.literal(1),
  /** What a call no rule matches gets: read tools and write tools. */
  defaults: z.strictObject({ read: actionSchema.optional(), write: actionSchema.optional() }).optional(),
  rules: z.array(ruleSchema).max(1000).default([]),
});

/** One rule of a policy file. */
export type PolicyRule = z.output<typeof ruleSchema>;

/**
 * What a tool call is about, for matching: one subject per change of its plan (plugin, resource,
 * risky), one per plugin it reads, or none (the rule's tool alone decides).
 */
export interface PolicySubject {
  plugin?: string;
  resource?: string;
  risky?: boolean;
}

/** What the policy decided for a call, and why. */
export interface PolicyDecision {
  action: PolicyAction;
  /** The rules that decided (index in the file, from 0), or `default`. */
  by: (number | 'default')[];
  /** A sentence for the agent and the ledger. */
  reason: string;
}

const strictness: Record<PolicyAction, number> = { allow: 0, ask: 1, deny: 2 };

function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`);
}

interface CompiledRule {
  rule: PolicyRule;
  index: number;
  resources?: RegExp[];
}

/**
 * The MCP server's policy: for each tool call, `allow`, `ask` (a human approves through MCP
 * elicitation, seeing the plan) or `deny`. Rules are tried in file order; for each subject of a
 * call (each change of its plan, each plugin it reads) the first rule that matches decides, and
 * the call gets the strictest of those decisions (deny over ask over allow). A call no rule
 * matches gets the default: read tools `allow`, write tools `deny` (read-only).
 *
 * @example
 * ```ts
 * const policy = Policy.parse(`version: 1
 * rules:
 *   - { tools: apply, plugins: sysctl, resources: "net.ipv4.*", action: ask }
 * `, 'policy.yaml');
 * policy.decide('apply', [{ plugin: 'sysctl', resource: 'net.ipv4.ip_forward', risky: false }]).action; // 'ask'
 * ```
 */
export class Policy {
  readonly #rules: CompiledRule[];
  readonly #defaults: { read: PolicyAction; write: PolicyAction };

  private constructor(
    /** Where the policy came from (a file, or `read-only default`). */
    readonly source: string,
    rules: PolicyRule[],
    defaults: { read?: PolicyAction | undefined; write?: PolicyAction | undefined } = {},
  ) {
    this.#rules = rules.map((rule, index) => ({
      rule,
      index,
      ...(rule.resources === undefined ? {} : { resources: rule.resources.map(globToRegExp) }),
    }));
    this.#defaults = { read: defaults.read ?? 'allow', write: defaults.write ?? 'deny' };
  }

  /** The read-only default: every read tool allowed, every write tool denied. */
  static readOnly(): Policy {
    return new Policy('the read-only default policy', []);
  }

  /** Parse a policy (YAML or JSON); `source` names it in errors. */
  static parse(text: string, source: string): Policy {
    let value: unknown;
    try {
      value = parse(text);
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_MCP_POLICY_FILE',
        `${source} is not valid YAML: ${(err as Error).message}`,
        {
          data: { file: source },
          cause: err,
        },
      );
    }
    const parsed = policySchema.safeParse(value);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
      throw new OpdbusError(
        'OPDBUS_ERR_MCP_POLICY_FILE',
        `${source} is not a valid policy:\n${issues.map((i) => `  ${source}: ${i.path}: ${i.message}`).join('\n')}\nSee docs/mcp.md for the format.`,
        { data: { file: source, issues } },
      );
    }
    return new Policy(source, parsed.data.rules, parsed.data.defaults);
  }

  /** Read a policy file. */
  static load(path: string): Policy {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_MCP_POLICY_FILE',
        `Cannot read the policy file ${path}: ${(err as Error).message}`,
        { data: { file: path }, cause: err },
      );
    }
    return Policy.parse(text, path);
  }

  #matches(compiled: CompiledRule, tool: string, subject: PolicySubject): boolean {
    const { rule } = compiled;
    if (rule.tools !== undefined && !rule.tools.includes('*') && !rule.tools.includes(tool)) return false;
    if (
      rule.plugins !== undefined &&
      (subject.plugin === undefined || !rule.plugins.includes(subject.plugin))
    )
      return false;
    if (compiled.resources !== undefined) {
      const resource = subject.resource;
      if (resource === undefined || !compiled.resources.some((re) => re.test(resource))) return false;
    }
    if (rule.risky !== undefined && (subject.risky ?? false) !== rule.risky) return false;
    return true;
  }

  /** Decide a call of `tool` about `subjects` (see {@link PolicySubject}). */
  decide(tool: string, subjects: readonly PolicySubject[]): PolicyDecision {
    const list = subjects.length === 0 ? [{}] : subjects;
    let action: PolicyAction = 'allow';
    const by = new Set<number | 'default'>();
    const reasons: string[] = [];
    for (const subject of list) {
      const hit = this.#rules.find((r) => this.#matches(r, tool, subject));
      const a: PolicyAction =
        hit?.rule.action ?? (isWriteTool(tool) ? this.#defaults.write : this.#defaults.read);
      if (strictness[a] > strictness[action]) {
        action = a;
        reasons.length = 0;
        by.clear();
      }
      if (a === action) {
        by.add(hit?.index ?? 'default');
        const why =
          hit === undefined
            ? `no rule of ${this.source} matches ${describe(tool, subject)}; the default for ${isWriteTool(tool) ? 'write' : 'read'} tools is ${a}`
            : `rule ${hit.index + 1} of ${this.source} says ${a} for ${describe(tool, subject)}${hit.rule.reason === undefined ? '' : ` (${hit.rule.reason})`}`;
        if (!reasons.includes(why) && reasons.length < 5) reasons.push(why);
      }
    }
    return { action, by: [...by], reason: reasons.join('; ') };
  }
}

function describe(tool: string, subject: PolicySubject): string {
  const parts = [tool];
  if (subject.plugin !== undefined) parts.push(subject.plugin);
  if (subject.resource !== undefined) parts.push(subject.resource);
  if (subject.risky === true) parts.push('(risky)');
  return parts.join(' ');
}
