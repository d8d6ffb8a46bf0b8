import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Engine,
  OpdbusError,
  PluginRegistry,
  makeChange,
  parseStateDocument,
  stringifyStateDocument,
  type PluginContext,
} from '@opdbus/core';
import { openNetns } from '@opdbus/netlink';
import { NftClient, normalizeRule, ruleToNftJson, type Rule } from '@opdbus/nftables';
import { createNetns, probeSandbox, type SandboxNetns } from '@opdbus/sandbox';
import { describeIf } from '@opdbus/sandbox/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ruleOperations } from '../src/apply.js';
import { createFirewallPlugin, type FirewallPluginOptions } from '../src/plugin.js';
import type { FirewallSection, RuleEntry, TableEntry } from '../src/schema.js';
import { nft, nftJsonRules, nftTool } from './helpers.js';

const registryOf = (options: FirewallPluginOptions = {}) => {
  const plugin = createFirewallPlugin(options);
  return { plugin, registry: new PluginRegistry([plugin]) };
};
const { registry } = registryOf();
const doc = (section: FirewallSection, reg = registry) =>
  parseStateDocument(JSON.stringify({ version: 1, plugins: { firewall: section } }), {
    source: 'test.yaml',
    registry: reg,
  });

/** A web server's filter table, as a state document declares it. */
const webTable = (rules?: RuleEntry[]): TableEntry => ({
  family: 'inet',
  name: 'web',
  sets: [
    { name: 'blocked', type: 'ipv4_addr', flags: ['interval'], elements: ['203.0.113.0/24', '198.51.100.7'] },
  ],
  chains: [
    {
      name: 'input',
      hook: 'input',
      priority: 'filter',
      policy: 'drop',
      rules: rules ?? [
        { name: 'established', match: { ct: { state: 'established,related' } }, verdict: 'accept' },
        { name: 'invalid', match: { ct: { state: 'invalid' } }, verdict: 'drop' },
        { name: 'loopback', match: { iif: 'lo' }, verdict: 'accept' },
        { name: 'blocked', match: { ip: { saddr: '@blocked' } }, statements: ['counter'], verdict: 'drop' },
        {
          name: 'ping',
          match: { icmp: { type: 'echo-request' } },
          statements: [{ limit: { rate: 5, per: 'second' } }],
          verdict: 'accept',
        },
        { name: 'ssh', match: { tcp: { dport: 22 }, ct: { state: 'new' } }, verdict: 'accept' },
        { name: 'web', match: { tcp: { dport: [80, 443] } }, verdict: 'accept' },
        { name: 'log', statements: [{ log: { prefix: 'drop: ' } }] },
      ],
    },
  ],
});

describe('firewall section schema', () => {
  const refuse = (yaml: string): string => {
    try {
      parseStateDocument(`version: 1\nplugins:\n  firewall:\n${yaml}`, { source: 'host.yaml', registry });
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('expected the document to be refused');
  };
  const table = (chain: string) =>
    `    tables:\n      - family: inet\n        name: t\n        chains:\n${chain}`;

  it('accepts the readable form', () => {
    expect(() => doc({ tables: [webTable()] })).not.toThrow();
  });

  it('refuses what cannot be encoded, with the place in the document', () => {
    expect(refuse(table('          - { name: c, rules: [ { match: { tcp: { dprot: 22 } } } ] }\n'))).toMatch(
      /host\.yaml:\d+:\d+: plugins\.firewall\.tables\[0\]\.chains\[0\]\.rules\[0\]\.match\.tcp\.dprot: unknown field/,
    );
    expect(
      refuse(table('          - { name: c, rules: [ { match: { tcp: { dport: 99999 } } } ] }\n')),
    ).toContain(
      'host.yaml:8:33: plugins.firewall.tables[0].chains[0].rules[0]: 99999 is not a valid port or service name (0-65535)',
    );
    expect(
      refuse(
        '    tables:\n      - family: ip\n        name: t\n        chains:\n          - { name: c, rules: [ { match: { ip6: { saddr: "::1" } } } ] }\n',
      ),
    ).toContain("ip6.saddr needs ipv6, but the table's family is ip");
    expect(refuse(table('          - { name: c, policy: drop }\n'))).toContain(
      'a type, priority or policy needs a hook',
    );
    expect(refuse(table('          - { name: c, hook: input, priority: fliter }\n'))).toContain(
      '"fliter" is not a chain priority',
    );
    expect(
      refuse(
        table(
          '          - name: c\n            rules:\n              - { name: a, verdict: accept }\n              - { name: a, verdict: drop }\n',
        ),
      ),
    ).toContain('rule name a is used twice in chain c');
    expect(
      refuse(
        '    tables:\n      - family: inet\n        name: t\n        sets:\n          - { name: s, type: ipv4_addr, elements: [10.0.0.0/8] }\n',
      ),
    ).toContain('the set needs `flags: [interval]`');
    expect(
      refuse(
        '    tables:\n      - family: inet\n        name: t\n        sets:\n          - { name: s, type: ipv4_addr, flags: [interval], elements: [10.0.0.0/8, 10.1.0.0/16] }\n',
      ),
    ).toContain('overlap');
  });
});

describe('rule operations', () => {
  const r = (name: string, port: number): Rule => ({
    name,
    match: { tcp: { dport: port } },
    verdict: 'accept',
  });
  const current = [r('a', 1), r('b', 2), r('c', 3), { verdict: 'drop' as const }].map((rule, i) => ({
    rule,
    handle: 10 + i,
  }));

  it('keeps unchanged rules, replaces changed named ones in place and inserts before the next kept rule', () => {
    expect(
      ruleOperations(current, [r('a', 1), r('x', 9), r('b', 22), r('c', 3), { verdict: 'drop' }]),
    ).toEqual({
      deletes: [],
      replaces: [{ handle: 11, rule: r('b', 22) }],
      inserts: [{ rule: r('x', 9), before: 11 }],
    });
  });

  it('moves the fewest rules to reorder, and deletes what is gone', () => {
    expect(ruleOperations(current, [r('c', 3), r('a', 1), r('b', 2)])).toEqual({
      deletes: [12, 13],
      replaces: [],
      inserts: [{ rule: r('c', 3), before: 10 }],
    });
  });
});

describeIf([probeSandbox().netns, nftTool], 'firewall plugin in a network namespace', () => {
  let ns: SandboxNetns;
  let stateDir: string;
  const plugins: { close(): void }[] = [];
  const engineFor = (reg: PluginRegistry) =>
    new Engine({
      registry: reg,
      stateDir,
      target: { netns: ns.name },
      openNetns,
      verify: { attempts: 4, initialDelayMs: 20 },
    });
  const setup = (options: FirewallPluginOptions = {}) => {
    const { plugin, registry: reg } = registryOf(options);
    plugins.push(plugin);
    const engine = engineFor(reg);
    return { plugin, reg, engine, ctx: (): PluginContext => engine.context('firewall') };
  };
  const listing = async () => (await nft(ns, ['list', 'ruleset'])).replace(/ expires \S+/g, '');
  /** The listing with each table's sets and chains sorted (nft lists them in creation order). */
  const sortedListing = async () =>
    (await listing())
      .split(/^(?=table )/m)
      .map((table) => {
        const body = table.replace(/^table [^\n]*\n/, '').replace(/\n}\n*$/, '');
        return `${table.split('\n')[0]}\n${body.split('\n\n').sort().join('\n\n')}\n}`;
      })
      .sort()
      .join('\n');

  beforeAll(async () => {
    ns = await createNetns();
    stateDir = await mkdtemp(join(tmpdir(), 'opdbus-firewall-'));
  });
  afterEach(async () => {
    for (const p of plugins.splice(0)) p.close();
    await nft(ns, ['flush', 'ruleset']);
    await rm(stateDir, { recursive: true, force: true });
    stateDir = await mkdtemp(join(tmpdir(), 'opdbus-firewall-'));
  });
  afterAll(async () => {
    await ns?.destroy();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('round-trips a rich ruleset: apply, nothing left to do, and nft lists every rule as written', async () => {
    const { engine, reg, plugin, ctx } = setup();
    const section: FirewallSection = {
      tables: [
        webTable(),
        {
          family: 'ip',
          name: 'nat',
          chains: [
            {
              name: 'prerouting',
              type: 'nat',
              hook: 'prerouting',
              priority: 'dstnat',
              rules: [
                {
                  name: 'nas',
                  match: { iifname: 'wan0', tcp: { dport: 2222 } },
                  statements: [{ dnat: { to: '192.168.10.20:22' } }],
                },
              ],
            },
            {
              name: 'postrouting',
              type: 'nat',
              hook: 'postrouting',
              priority: 'srcnat',
              rules: [
                { match: { oifname: 'wan0', ip: { saddr: '192.168.10.0/24' } }, statements: ['masquerade'] },
              ],
            },
          ],
        },
      ],
    };
    const result = await engine.apply(doc(section, reg));
    expect(result.status).toBe('committed');
    expect((await engine.plan(doc(section, reg))).plan.changes).toEqual([]);
    // The full query, written as a document, plans nothing.
    const full = await plugin.query(ctx());
    const again = parseStateDocument(stringifyStateDocument({ firewall: full }), {
      source: 'query.yaml',
      registry: reg,
    });
    expect((await engine.plan(again)).plan.changes).toEqual([]);
    // nft -j lists each rule exactly as op-dbus's readable form renders it.
    const listed = await nftJsonRules(ns);
    for (const t of section.tables!)
      for (const c of t.chains!) {
        const want = c.rules!.map((r) => ruleToNftJson(normalizeRule(r as Rule, t.family), t.family));
        expect(listed.get(`${t.family} ${t.name} ${c.name}`)).toEqual(want);
      }
  });

  it.each(['webserver', 'router', 'blocklist'])(
    'queries the %s example loaded with `nft -f` and re-applies it with no diff',
    async (name) => {
      const { engine, reg, plugin, ctx } = setup();
      await nft(ns, ['-f', '-'], readFileSync(new URL(`./rulesets/${name}.nft`, import.meta.url), 'utf8'));
      const before = await sortedListing();
      const observed = await plugin.query(ctx());
      const rules = observed.tables!.flatMap((t) => (t.chains ?? []).flatMap((c) => c.rules ?? []));
      expect(rules.length).toBeGreaterThan(3);
      expect(rules.filter((r) => r.expr !== undefined)).toEqual([]);
      const document = parseStateDocument(stringifyStateDocument({ firewall: observed }), {
        source: `${name}.yaml`,
        registry: reg,
      });
      expect((await engine.plan(document)).plan.changes).toEqual([]);
      expect((await engine.apply(document)).status).toBe('no-changes');
      // Into an empty ruleset, the document writes the same ruleset again.
      await nft(ns, ['flush', 'ruleset']);
      expect((await engine.apply(document, { force: true })).status).toBe('committed');
      expect(await sortedListing()).toBe(before);
    },
  );

  it('keeps the rules it does not change: edits by name, inserts, deletes and reorders touch only those', async () => {
    const { engine, reg } = setup();
    await engine.apply(doc({ tables: [webTable()] }, reg));
    const handles = async () =>
      new Map(
        [
          ...(await nft(ns, ['-a', 'list', 'chain', 'inet', 'web', 'input'])).matchAll(
            /comment "([^"]+)" # handle (\d+)/g,
          ),
        ].map((m) => [m[1]!, Number(m[2])]),
      );
    const h0 = await handles();
    const rules = webTable().chains![0]!.rules!;
    const edited: RuleEntry[] = [
      rules[0]!,
      rules[2]!, // "invalid" removed
      rules[3]!,
      { name: 'dns', match: { udp: { dport: 53 } }, verdict: 'accept' }, // inserted
      rules[4]!,
      { ...rules[5]!, match: { tcp: { dport: 2222 }, ct: { state: 'new' } } }, // changed in place
      rules[6]!,
      rules[7]!,
    ];
    const result = await engine.apply(doc({ tables: [webTable(edited)] }, reg));
    expect(result.plan.changes.map((c) => c.summary)).toEqual([
      'update chain inet web input: rules +dns ~ssh -invalid',
    ]);
    const h1 = await handles();
    for (const name of ['established', 'loopback', 'blocked', 'ping', 'ssh', 'web', 'log'])
      expect(h1.get(name)).toBe(h0.get(name));
    expect(h1.has('invalid')).toBe(false);
    expect(await nft(ns, ['list', 'chain', 'inet', 'web', 'input'])).toMatch(
      /tcp dport 2222 ct state new accept comment "ssh"/,
    );
    expect([...h1.keys()]).toEqual([
      'established',
      'loopback',
      'blocked',
      'dns',
      'ping',
      'ssh',
      'web',
      'log',
    ]);
  });

  it('a batch the kernel refuses leaves the ruleset untouched', async () => {
    const { engine, reg } = setup();
    await engine.apply(doc({ tables: [webTable()] }, reg));
    const before = await listing();
    using client = NftClient.open({ netns: ns });
    const generation = (await client.generation()).id;
    const failing: FirewallSection = {
      tables: [
        {
          family: 'inet',
          name: 'web',
          sets: [{ name: 'blocked', elements: ['203.0.113.0/24', '192.0.2.1'] }],
          chains: [
            { name: 'input', policy: 'accept', hook: 'input' },
            { name: 'extra', rules: [{ verdict: 'accept' }, { verdict: { jump: 'missing' } }] },
          ],
        },
        { family: 'ip', name: 'more', chains: [{ name: 'c' }] },
      ],
    };
    const err = await engine.apply(doc(failing, reg), { force: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpdbusError);
    expect(err).toMatchObject({
      code: 'OPDBUS_ERR_APPLY_FAILED',
      data: { causeCode: 'OPDBUS_ERR_FIREWALL_APPLY' },
    });
    expect((err as Error).message).toMatch(/ENOENT/);
    expect(await listing()).toBe(before);
    // Nothing was committed at all: the generation did not move (the restore had nothing to do).
    expect((await client.generation()).id).toBe(generation);
  });

  it('fails cleanly when the ruleset changed after the plan', async () => {
    const { engine, reg, plugin, ctx } = setup();
    await engine.apply(doc({ tables: [webTable()] }, reg));
    const desired: FirewallSection = {
      tables: [{ family: 'inet', name: 'web', chains: [{ name: 'input', hook: 'input', policy: 'accept' }] }],
    };
    const changes = plugin
      .diff(desired, await plugin.query(ctx(), { scope: desired }))
      .map((s) => makeChange('firewall', s));
    await nft(ns, ['add', 'rule', 'inet', 'web', 'input', 'tcp', 'dport', '7', 'accept']);
    const before = await listing();
    await expect(plugin.applyBatch!(changes, ctx())).rejects.toMatchObject({
      code: 'OPDBUS_ERR_FIREWALL_CONFLICT',
      data: { resource: 'chain/inet/web/input' },
    });
    expect(await listing()).toBe(before);
  });

  it('fails cleanly when another writer commits between its read and its batch (generation guard)', async () => {
    let intrude = true;
    const { engine, reg } = setup({
      beforeCommit: async () => {
        if (!intrude) return;
        intrude = false;
        await nft(ns, ['add', 'table', 'ip', 'intruder']);
      },
    });
    const err = await engine.apply(doc({ tables: [webTable()] }, reg)).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'OPDBUS_ERR_APPLY_FAILED',
      data: { causeCode: 'OPDBUS_ERR_FIREWALL_CONFLICT' },
    });
    expect(await nft(ns, ['list', 'tables'])).toBe('table ip intruder\n');
    // Applied again, with nobody in between, it goes through.
    expect((await engine.apply(doc({ tables: [webTable()] }, reg))).status).toBe('committed');
  });

  it('refuses to write an iif rule for an interface that does not exist', async () => {
    const { engine, reg } = setup();
    const section: FirewallSection = {
      tables: [
        {
          family: 'inet',
          name: 't',
          chains: [{ name: 'c', rules: [{ match: { iif: 'nosuch0' }, verdict: 'accept' }] }],
        },
      ],
    };
    const err = await engine.apply(doc(section, reg)).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'OPDBUS_ERR_APPLY_FAILED',
      data: { causeCode: 'OPDBUS_ERR_FIREWALL_INVALID' },
    });
    expect((err as Error).message).toContain('there is no interface nosuch0 (use iifname');
  });

  describe('risky-change guard', () => {
    const connection = { client: '198.18.0.1', clientPort: 50022, server: '198.18.0.2', serverPort: 22 };
    const input = (
      policy: 'accept' | 'drop',
      rules: Rule[],
      sets: TableEntry['sets'] = [],
    ): FirewallSection => ({
      tables: [
        { family: 'inet', name: 'guard', sets, chains: [{ name: 'input', hook: 'input', policy, rules }] },
      ],
    });
    const risky = async (options: FirewallPluginOptions, section: FirewallSection) => {
      const { engine, reg } = setup(options);
      const { plan } = await engine.plan(doc(section, reg));
      return plan.changes.filter((c) => c.risk !== undefined).map((c) => c.risk!.reason);
    };

    it('flags a policy drop on input without an accept for the management connection', async () => {
      const reasons = await risky(
        { managementConnections: [connection] },
        input('drop', [{ match: { tcp: { dport: 80 } }, verdict: 'accept' }]),
      );
      expect(reasons[0]).toContain(
        'the management connection 198.18.0.1:50022 → 198.18.0.2:22 (declared) could be dropped on the way in by table inet guard: chain input (hook input): policy drop',
      );
      const { engine, reg } = setup({ managementConnections: [connection] });
      const section = input('drop', [{ match: { tcp: { dport: 80 } }, verdict: 'accept' }]);
      await expect(engine.apply(doc(section, reg))).rejects.toMatchObject({
        code: 'OPDBUS_ERR_RISKY_CHANGE',
      });
      expect(await nft(ns, ['list', 'tables'])).toBe('');
      expect((await engine.apply(doc(section, reg), { force: true })).status).toBe('committed');
    });

    it('does not flag it when a rule accepts the connection', async () => {
      const options = { managementConnections: [connection] };
      expect(
        await risky(
          options,
          input('drop', [{ match: { ct: { state: 'established,related' } }, verdict: 'accept' }]),
        ),
      ).toEqual([]);
      expect(
        await risky(options, input('drop', [{ match: { tcp: { dport: 22 } }, verdict: 'accept' }])),
      ).toEqual([]);
      const viaJump = input('drop', [
        { match: { ip: { saddr: '198.18.0.0/15' } }, verdict: { jump: 'mgmt' } },
      ]);
      viaJump.tables![0]!.chains!.push({
        name: 'mgmt',
        rules: [{ match: { tcp: { dport: 22 } }, verdict: 'accept' }],
      });
      expect(await risky(options, viaJump)).toEqual([]);
      expect(
        await risky(options, input('accept', [{ match: { tcp: { dport: 23 } }, verdict: 'drop' }])),
      ).toEqual([]);
    });

    it('follows sets and jumps: adding the client to a blocklist that is dropped is risky', async () => {
      const options = { managementConnections: [connection] };
      const section = (elements: string[]): FirewallSection => ({
        tables: [
          {
            family: 'inet',
            name: 'guard',
            sets: [{ name: 'blocked', type: 'ipv4_addr', flags: ['interval'], elements }],
            chains: [
              { name: 'filter-in', rules: [{ match: { ip: { saddr: '@blocked' } }, verdict: 'drop' }] },
              {
                name: 'input',
                hook: 'input',
                policy: 'accept',
                rules: [
                  { verdict: { jump: 'filter-in' } },
                  { match: { tcp: { dport: 22 } }, verdict: 'accept' },
                ],
              },
            ],
          },
        ],
      });
      const { engine, reg } = setup(options);
      await engine.apply(doc(section(['192.0.2.0/24']), reg));
      const { plan } = await engine.plan(doc(section(['192.0.2.0/24', '198.18.0.0/24']), reg));
      expect(plan.changes).toHaveLength(1);
      expect(plan.changes[0]!.risk?.reason).toContain('chain filter-in, rule 1 (ip saddr @blocked drop)');
    });

    it('counts SSH_CONNECTION only when it ends in the target namespace', async () => {
      const rules: Rule[] = [{ match: { tcp: { dport: 80 } }, verdict: 'accept' }];
      const env = { SSH_CONNECTION: '198.18.0.1 50022 198.18.0.2 22' };
      expect(await risky({ env }, input('drop', rules))).toEqual([]);
      const r = await ns.exec('ip', ['addr', 'add', '198.18.0.2/24', 'dev', 'lo']);
      expect(r.code).toBe(0);
      try {
        const reasons = await risky({ env }, input('drop', rules));
        expect(reasons[0]).toContain('(SSH_CONNECTION) could be dropped on the way in');
      } finally {
        await ns.exec('ip', ['addr', 'del', '198.18.0.2/24', 'dev', 'lo']);
      }
    });
  });
});
