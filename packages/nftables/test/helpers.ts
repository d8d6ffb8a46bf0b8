import { accessSync, constants } from 'node:fs';
import type { SandboxNetns } from '@opdbus/sandbox';
import { requirement, type Requirement } from '@opdbus/sandbox/testing';

function onPath(tool: string): boolean {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) {
    try {
      accessSync(`${dir}/${tool}`, constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** The `nft` program (Debian package nftables), used only to cross-check. */
export const nftTool: Requirement = requirement(
  'nft',
  onPath('nft'),
  'the nft program is not installed; install it with `apt-get install nftables` (it is only used to cross-check)',
);

/** Run nft inside the namespace; throws with its stderr when it fails. */
export async function nft(ns: SandboxNetns, args: readonly string[], input?: string): Promise<string> {
  const r = await ns.exec(
    'sh',
    ['-c', input === undefined ? `exec nft "$@"` : `printf '%s' "$NFT_INPUT" | nft "$@"`, 'nft', ...args],
    {
      env: { ...process.env, NFT_INPUT: input ?? '' },
    },
  );
  if (r.code !== 0) throw new Error(`nft ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** The rules of `nft -j list ruleset`: per chain, each rule's expr (counters zeroed) and comment. */
export async function nftJsonRules(
  ns: SandboxNetns,
): Promise<Map<string, { expr: unknown[]; comment?: string }[]>> {
  const out = JSON.parse(await nft(ns, ['-j', 'list', 'ruleset'])) as { nftables: Record<string, unknown>[] };
  const rules = new Map<string, { expr: unknown[]; comment?: string }[]>();
  for (const o of out.nftables) {
    const r = o.rule as
      { family: string; table: string; chain: string; expr: unknown[]; comment?: string } | undefined;
    if (r === undefined) continue;
    const key = `${r.family} ${r.table} ${r.chain}`;
    const expr = JSON.parse(JSON.stringify(r.expr), (k, v: unknown) =>
      (k === 'packets' || k === 'bytes') && typeof v === 'number' ? 0 : v,
    ) as unknown[];
    rules.set(key, [
      ...(rules.get(key) ?? []),
      r.comment === undefined ? { expr } : { expr, comment: r.comment },
    ]);
  }
  return rules;
}
