// The schema of the firewall section: the entries of schema.ts, checked down to every rule's and
// set's nftables encoding (with the normalizers of model.ts, whose results are cached for diff).
import { lazySchema } from '@opdbus/core';
import {
  chainToNft,
  parsePriority,
  setToNft,
  type ChainSpec,
  type Rule,
  type SetSpec,
} from '@opdbus/nftables';
import { z } from 'zod';
import { normalizeRuleCached, normalizeSet } from './model.js';
import { tableSchema, type FirewallSection } from './schema.js';

const problems = (fn: () => void): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
};

/** The firewall section of the state document, validated down to every rule's encoding. */
export const firewallSchema: z.ZodType<FirewallSection> = lazySchema(
  () =>
    z
      .strictObject({
        tables: z
          .array(tableSchema)
          .optional()
          .describe('The nftables tables this document manages, by family and name.'),
      })
      .superRefine((section, ctx) => {
        const tableKeys = new Set<string>();
        for (const [ti, table] of (section.tables ?? []).entries()) {
          const tkey = `${table.family} ${table.name}`;
          if (tableKeys.has(tkey))
            ctx.addIssue({ code: 'custom', message: `table ${tkey} is named twice`, path: ['tables', ti] });
          tableKeys.add(tkey);
          const family = table.family;
          const chainNames = new Set<string>();
          for (const [ci, chain] of (table.chains ?? []).entries()) {
            const at = ['tables', ti, 'chains', ci];
            if (chainNames.has(chain.name))
              ctx.addIssue({ code: 'custom', message: `chain ${chain.name} is named twice`, path: at });
            chainNames.add(chain.name);
            if (chain.state === 'absent') continue;
            const bad = problems(() => chainToNft(family, table.name, chain as ChainSpec));
            if (bad !== undefined) ctx.addIssue({ code: 'custom', message: bad, path: at });
            if (chain.priority !== undefined && typeof chain.priority === 'string') {
              const p = problems(() => parsePriority(family, chain.priority!));
              if (p !== undefined) ctx.addIssue({ code: 'custom', message: p, path: [...at, 'priority'] });
            }
            const ruleNames = new Set<string>();
            for (const [ri, rule] of (chain.rules ?? []).entries()) {
              if (rule.name !== undefined) {
                if (ruleNames.has(rule.name))
                  ctx.addIssue({
                    code: 'custom',
                    message: `rule name ${rule.name} is used twice in chain ${chain.name}`,
                    path: [...at, 'rules', ri, 'name'],
                  });
                ruleNames.add(rule.name);
              }
              const msg = problems(() => normalizeRuleCached(rule as Rule, family));
              if (msg !== undefined)
                ctx.addIssue({ code: 'custom', message: msg, path: [...at, 'rules', ri] });
            }
          }
          const setNames = new Set<string>();
          for (const [si, set] of (table.sets ?? []).entries()) {
            const at = ['tables', ti, 'sets', si];
            if (setNames.has(set.name))
              ctx.addIssue({ code: 'custom', message: `set ${set.name} is named twice`, path: at });
            setNames.add(set.name);
            if (set.state === 'absent' || set.type === undefined) continue;
            const msg = problems(() => {
              setToNft(table.name, set as SetSpec);
              normalizeSet(set);
            });
            if (msg !== undefined) ctx.addIssue({ code: 'custom', message: msg, path: at });
          }
        }
      })
      .describe(
        'nftables: tables with their chains (and rules) and sets, over native nfnetlink.',
      ) as z.ZodType<FirewallSection>,
);
