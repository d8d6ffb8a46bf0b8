import { readFileSync } from 'node:fs';
import { OpdbusError } from '@opdbus/core';
import { createNetns, probeSandbox, type SandboxNetns } from '@opdbus/sandbox';
import { describeIf } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NftBatch,
  NftClient,
  NftMonitor,
  chainToNft,
  compileRule,
  elementCodec,
  elementsToNft,
  readRuleset,
  ruleToNftJson,
  setToNft,
  type NftMonitorEvent,
  type Rule,
  type SetSpec,
} from '../src/index.js';
import { nft, nftJsonRules, nftTool } from './helpers.js';

const rulesets = ['webserver', 'router', 'blocklist'] as const;
const example = (name: string): string =>
  readFileSync(new URL(`./rulesets/${name}.nft`, import.meta.url), 'utf8');

/** A rich chain: every kind of match, statement and verdict the readable form has. */
const richRules: Rule[] = [
  { name: 'established', match: { ct: { state: 'established,related' } }, verdict: 'accept' },
  { name: 'invalid', match: { ct: { state: 'invalid' } }, statements: ['counter'], verdict: 'drop' },
  { name: 'loopback', match: { iif: 'lo' }, verdict: 'accept' },
  { match: { iifname: 'veth*', oifname: { not: 'lo' } }, verdict: 'accept' },
  { match: { ip: { saddr: '10.0.0.0/8', daddr: '192.168.1.0/24' }, tcp: { dport: 22 } }, verdict: 'accept' },
  { match: { ip: { saddr: '10.64.0.0/10' } }, verdict: 'accept' },
  { match: { ip: { saddr: '10.0.0.1-10.0.0.9' } }, verdict: 'accept' },
  { match: { ip6: { saddr: 'fe80::/10' } }, verdict: 'accept' },
  { match: { ip6: { daddr: 'fd00::1' }, udp: { dport: [53, 123] } }, verdict: 'accept' },
  { match: { ip: { saddr: '@blocked' } }, statements: ['counter'], verdict: 'drop' },
  { match: { ip: { saddr: { not: ['1.2.3.4', '5.6.7.8'] } }, tcp: { dport: 8080 } }, verdict: 'drop' },
  { match: { tcp: { dport: '1000-2000', sport: { not: 53 } } }, verdict: 'accept' },
  { match: { tcp: { dport: { not: '3000-4000' } } }, verdict: 'continue' },
  { match: { udp: { dport: '@ports' } }, verdict: 'accept' },
  { match: { l4proto: ['tcp', 'udp'] }, verdict: 'return' },
  { match: { ip: { protocol: 'icmp' } }, verdict: 'accept' },
  {
    match: { icmp: { type: 'echo-request' } },
    statements: [{ limit: { rate: 10, per: 'second' } }],
    verdict: 'accept',
  },
  { match: { icmpv6: { type: ['echo-request', 'nd-neighbor-solicit'] } }, verdict: 'accept' },
  { match: { mark: 1, ct: { mark: { not: 2 } } }, verdict: 'accept' },
  { match: { ct: { state: { not: 'invalid' }, status: 'dnat' } }, verdict: 'accept' },
  {
    name: 'ssh-log',
    match: { tcp: { dport: 22 } },
    statements: [{ log: { prefix: 'ssh: ', level: 'info' } }, 'counter'],
    verdict: 'accept',
  },
  { statements: [{ limit: { rate: 1, per: 'second', unit: 'mbytes', over: true } }], verdict: 'drop' },
  { statements: [{ log: { group: 2 } }, { mark: { set: 16 } }] },
  { match: { l4proto: 'tcp' }, verdict: { reject: { type: 'tcp-reset' } } },
  { match: { ip: { daddr: '10.9.9.9' } }, verdict: { reject: { type: 'icmp', code: 'host-unreachable' } } },
  { verdict: { reject: { type: 'icmpx', code: 'admin-prohibited' } } },
  { verdict: { jump: 'other' } },
  { verdict: 'reject' },
];
const natRules: Rule[] = [
  { match: { tcp: { dport: 8080 } }, statements: [{ dnat: { to: '10.0.0.2:80' } }] },
  { match: { tcp: { dport: 8443 } }, statements: [{ dnat: { to: '[fd00::2]:443' } }] },
  { match: { tcp: { dport: 81 } }, statements: [{ redirect: { port: 8081 } }] },
];
const snatRules: Rule[] = [
  { match: { oifname: 'veth0', ip: { saddr: '192.168.0.0/16' } }, statements: ['masquerade'] },
  { match: { ip: { daddr: '1.2.3.4' } }, statements: [{ snat: { to: '5.6.7.8' } }] },
  { match: { l4proto: 'udp' }, statements: [{ masquerade: { port: '1024-2000', random: true } }] },
];
const sets: SetSpec[] = [
  {
    name: 'blocked',
    type: 'ipv4_addr',
    flags: ['interval'],
    elements: ['10.0.0.0/8', '172.16.0.1-172.16.0.9', '192.168.1.1'],
  },
  { name: 'ports', type: 'inet_service', elements: [53, 123] },
];

describeIf([probeSandbox().netns, nftTool], 'NftClient in a network namespace', () => {
  let ns: SandboxNetns;
  let client: NftClient;
  const lo = {
    index: (n: string) => (n === 'lo' ? 1 : undefined),
    name: (i: number) => (i === 1 ? 'lo' : undefined),
  };

  beforeAll(async () => {
    ns = await createNetns();
    client = NftClient.open({ netns: ns });
  });
  afterAll(async () => {
    client?.close();
    await ns?.destroy();
  });

  /** Write the rich table with our own batch (no nft). */
  async function writeRich(table: string): Promise<void> {
    const batch = new NftBatch().addTable('inet', { name: table });
    for (const s of sets) {
      batch.addSet('inet', setToNft(table, s));
      batch.addElements('inet', table, s.name, elementsToNft(elementCodec(s), s.elements ?? []));
    }
    batch.addChain('inet', chainToNft('inet', table, { name: 'other' }));
    batch.addChain(
      'inet',
      chainToNft('inet', table, { name: 'input', hook: 'input', priority: 'filter', policy: 'accept' }),
    );
    batch.addChain(
      'inet',
      chainToNft('inet', table, { name: 'pre', type: 'nat', hook: 'prerouting', priority: 'dstnat' }),
    );
    batch.addChain(
      'inet',
      chainToNft('inet', table, { name: 'post', type: 'nat', hook: 'postrouting', priority: 'srcnat' }),
    );
    const add = (chain: string, rules: Rule[]) => {
      for (const r of rules)
        batch.addRule('inet', {
          table,
          chain,
          expressions: compileRule(r, { family: 'inet', interfaces: lo }),
          ...(r.name === undefined ? {} : { comment: r.name }),
        });
    };
    add('input', richRules);
    add('pre', natRules);
    add('post', snatRules);
    await client.commit(batch);
  }

  it('writes a rich ruleset that reads back as written', async () => {
    await writeRich('rich');
    const rs = await readRuleset(client, { tables: [{ family: 'inet', name: 'rich' }] });
    const t = rs.tables[0]!;
    const chain = (name: string) => t.chains!.find((c) => c.name === name)!;
    expect(chain('input')).toMatchObject({ type: 'filter', hook: 'input', priority: 0, policy: 'accept' });
    expect(chain('input').rules).toEqual(richRules.map((r) => expect.objectContaining(r) as unknown));
    expect(chain('pre').rules).toEqual(natRules);
    expect(chain('post').rules).toEqual(snatRules);
    expect(t.sets).toEqual(sets);
    expect(rs.unreadableSets).toEqual([]);
  });

  it('every rule it writes is listed identically by `nft -j list ruleset`', async () => {
    const listed = await nftJsonRules(ns);
    for (const [chain, rules] of [
      ['input', richRules],
      ['pre', natRules],
      ['post', snatRules],
    ] as const) {
      const got = listed.get(`inet rich ${chain}`)!;
      expect(got.length).toBe(rules.length);
      for (const [i, rule] of rules.entries())
        expect({ chain, i, ...got[i] }).toEqual({ chain, i, ...ruleToNftJson(rule, 'inet') });
    }
  });

  it.each(rulesets)(
    'reads the %s example written by `nft -f` in readable form, and writes it back the same',
    async (name) => {
      await nft(ns, ['flush', 'ruleset']);
      await nft(ns, ['-f', '-'], example(name));
      // Elements with a timeout count down: their `expires` is left out of the comparison.
      const listing = async () => (await nft(ns, ['list', 'ruleset'])).replace(/ expires \S+/g, '');
      const before = await listing();
      const rs = await readRuleset(client);
      const raw = rs.tables.flatMap((t) =>
        (t.chains ?? []).flatMap((c) => (c.rules ?? []).filter((r) => r.expr !== undefined)),
      );
      expect(raw).toEqual([]);
      expect(rs.unreadableSets).toEqual([]);
      // Write it again from the readable form into a clean ruleset: nft lists the same text.
      await nft(ns, ['flush', 'ruleset']);
      const batch = new NftBatch();
      for (const t of rs.tables) {
        batch.addTable(t.family, { name: t.name });
        for (const s of t.sets ?? []) {
          batch.addSet(t.family, setToNft(t.name, s));
          const elements = elementsToNft(elementCodec(s), s.elements ?? []);
          if (elements.length > 0) batch.addElements(t.family, t.name, s.name, elements);
        }
        for (const c of t.chains ?? []) batch.addChain(t.family, chainToNft(t.family, t.name, c));
        for (const c of t.chains ?? [])
          for (const r of c.rules ?? [])
            batch.addRule(t.family, {
              table: t.name,
              chain: c.name,
              expressions: compileRule(r, { family: t.family, interfaces: lo }),
              ...(r.name === undefined ? {} : { comment: r.name }),
            });
      }
      await client.commit(batch);
      expect(await listing()).toBe(before);
    },
  );

  it('a batch the kernel refuses changes nothing and names the message', async () => {
    await nft(ns, ['flush', 'ruleset']);
    await nft(ns, ['-f', '-'], example('webserver'));
    const before = await nft(ns, ['list', 'ruleset']);
    const gen = (await client.generation()).id;
    const batch = new NftBatch()
      .addTable('inet', { name: 'extra' })
      .addChain('inet', { table: 'filter', name: 'more' })
      .addRule('inet', {
        table: 'filter',
        chain: 'input',
        expressions: compileRule({ verdict: 'accept' }, { family: 'inet' }),
      })
      .addRule('inet', {
        table: 'filter',
        chain: 'input',
        expressions: compileRule({ verdict: { jump: 'missing' } }, { family: 'inet' }),
      });
    const err = await client.commit(batch).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpdbusError);
    expect(err).toMatchObject({
      code: 'OPDBUS_ERR_NFT_REQUEST',
      data: {
        request: 'NFT_MSG_NEWRULE',
        errno: 'ENOENT',
        index: 3,
        description: 'add rule inet filter input',
      },
    });
    expect(await nft(ns, ['list', 'ruleset'])).toBe(before);
    expect((await client.generation()).id).toBe(gen);
  });

  it('a batch computed from an old generation is refused after another writer commits', async () => {
    const rs = await client.listRuleset();
    await nft(ns, ['add', 'table', 'ip', 'intruder']);
    const after = await nft(ns, ['list', 'ruleset']);
    const batch = new NftBatch().addTable('inet', { name: 'mine' });
    await expect(client.commit(batch, { generation: rs.generation })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_NFT_GENERATION',
      data: { errno: 'ERESTART' },
    });
    expect(await nft(ns, ['list', 'ruleset'])).toBe(after);
    // At the current generation it goes through.
    await client.commit(batch, { generation: (await client.generation()).id });
    expect(await nft(ns, ['list', 'tables'])).toContain('table inet mine');
  });

  it('writes and reads a 10k-element set in one batch', async () => {
    const elements = Array.from({ length: 10_000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`);
    const set: SetSpec = { name: 'big', type: 'ipv4_addr', flags: ['interval'], elements };
    const batch = new NftBatch()
      .addTable('inet', { name: 'big' })
      .addSet('inet', setToNft('big', set))
      .addElements('inet', 'big', 'big', elementsToNft(elementCodec(set), elements));
    const result = await client.commit(batch);
    expect(result.messages).toBeGreaterThan(3);
    const rs = await readRuleset(client, { tables: [{ family: 'inet', name: 'big' }] });
    expect(rs.tables[0]!.sets![0]!.elements).toHaveLength(10_000);
    expect(await nft(ns, ['list', 'set', 'inet', 'big', 'big'])).toContain('10.39.15.0/24');
  });

  it('the monitor reports what another writer changed, then the generation', async () => {
    const monitor = NftMonitor.open({ netns: ns });
    const events: NftMonitorEvent[] = [];
    const done = new Promise<void>((resolve) =>
      monitor.on('event', (e) => {
        events.push(e);
        if (e.type === 'generation') resolve();
      }),
    );
    try {
      await nft(ns, ['-f', '-'], 'table inet watched {\n  chain c {\n    tcp dport 22 accept\n  }\n}\n');
      await done;
    } finally {
      monitor.close();
    }
    expect(events).toEqual(
      expect.arrayContaining([
        { type: 'table', action: 'new', family: 'inet', table: 'watched' },
        { type: 'chain', action: 'new', family: 'inet', table: 'watched', name: 'c' },
        expect.objectContaining({ type: 'rule', action: 'new', table: 'watched', name: 'c' }),
        expect.objectContaining({ type: 'generation', processName: 'nft' }),
      ]),
    );
  });
});

describe('NftBatch', () => {
  it('splits large element lists into messages below the 64 KiB attribute limit', () => {
    const set: SetSpec = {
      name: 's',
      type: 'ipv6_addr',
      elements: Array.from({ length: 5000 }, (_, i) => `fd00::${i.toString(16)}`),
    };
    const batch = new NftBatch().addElements(
      'inet',
      't',
      's',
      elementsToNft(elementCodec(set), set.elements!),
    );
    expect(batch.length).toBeGreaterThan(1);
    const encoded = batch.encode(1, 7);
    // BEGIN carries the generation; every message is answered by its own sequence number.
    expect(encoded.messages.map((m) => m.seq)).toEqual(encoded.messages.map((_, i) => 2 + i));
    expect(encoded.buffer.readUInt16LE(4)).toBe(0x10);
  });
});
