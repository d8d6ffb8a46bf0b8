// An nftables ruleset of a 10k-element set and 1000 rules, written and read inside a network
// namespace: op-dbus (the native nfnetlink client, and the firewall plugin's verified transaction)
// against nft(8) spawned the way a script would (ip netns exec … nft -f / nft -j list ruleset).
import { Engine, PluginRegistry, parseStateDocument } from '@opdbus/core';
import { openNetns } from '@opdbus/netlink';
import {
  NftBatch,
  NftClient,
  chainToNft,
  compileRule,
  elementCodec,
  elementsToNft,
  readRuleset,
  setToNft,
} from '@opdbus/nftables';
import { createFirewallPlugin } from '@opdbus/plugins-firewall';
import { createNetns } from '@opdbus/sandbox';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { has, measure, ms, ratio, sh, stats, table } from '../lib.mjs';

export const title = 'firewall: a 10k-element set and 1000 rules (nftables)';

const ELEMENTS = 10_000;
const RULES = 1000;

/** The ruleset, readable (for op-dbus) and as an nft -f file. */
function workload() {
  const elements = Array.from({ length: ELEMENTS }, (_, i) => `100.${64 + (i >> 8)}.${i & 255}.0/24`);
  const rules = [{ name: 'blocked', match: { ip: { saddr: '@blocked' } }, verdict: 'drop' }];
  for (let i = 0; i < RULES - 1; i++)
    rules.push({
      name: `r${i}`,
      match: { ip: { saddr: `10.${i >> 8}.${i & 255}.0/24` }, tcp: { dport: 1000 + i } },
      statements: ['counter'],
      verdict: 'accept',
    });
  const set = { name: 'blocked', type: 'ipv4_addr', flags: ['interval'], elements };
  const chain = { name: 'input', hook: 'input', priority: 'filter', policy: 'accept', rules };
  const text = [
    'table inet bench {',
    `  set blocked { type ipv4_addr; flags interval; elements = { ${elements.join(', ')} } }`,
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    '    ip saddr @blocked drop comment "blocked"',
    ...rules
      .slice(1)
      .map(
        (r) =>
          `    ip saddr ${r.match.ip.saddr} tcp dport ${r.match.tcp.dport} counter accept comment "${r.name}"`,
      ),
    '  }',
    '}',
    '',
  ].join('\n');
  return {
    section: { tables: [{ family: 'inet', name: 'bench', sets: [set], chains: [chain] }] },
    set,
    chain,
    text,
  };
}

/** Time `fn` after an unmeasured `setup`, `iterations` times. */
async function measureWith(setup, fn, iterations) {
  const samples = [];
  for (let i = 0; i < iterations; i++) {
    await setup();
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return stats(samples);
}

export async function run({ log }) {
  const netns = await createNetns();
  const dir = await mkdtemp(join(tmpdir(), 'opdbus-bench-firewall-'));
  const client = NftClient.open({ netns: netns.name });
  const plugin = createFirewallPlugin();
  try {
    const { section, set, chain, text } = workload();
    const file = join(dir, 'ruleset.nft');
    await writeFile(file, text);
    const nftHere = has('nft');
    const nft = (args) => sh('ip', ['netns', 'exec', netns.name, 'nft', ...args]);
    const empty = async () => {
      const batch = new NftBatch();
      for (const t of await client.listTables()) batch.deleteTable(t.family, t.name);
      await client.commit(batch);
    };

    log(`write ${ELEMENTS} elements and ${RULES} rules with the native client (one batch)`);
    let messages = 0;
    let bytes = 0;
    const native = await measureWith(
      empty,
      async () => {
        const batch = new NftBatch()
          .addTable('inet', { name: 'bench' })
          .addSet('inet', setToNft('bench', set));
        batch.addElements('inet', 'bench', 'blocked', elementsToNft(elementCodec(set), set.elements));
        batch.addChain('inet', chainToNft('inet', 'bench', chain));
        for (const r of chain.rules)
          batch.addRule('inet', {
            table: 'bench',
            chain: 'input',
            expressions: compileRule(r, { family: 'inet' }),
            comment: r.name,
          });
        ({ messages, bytes } = await client.commit(batch));
      },
      7,
    );

    log('the same as a firewall plugin transaction (plan, checkpoint, journal, apply, verify)');
    const registry = new PluginRegistry([plugin]);
    const stateDir = join(dir, 'state');
    const engine = new Engine({ registry, stateDir, target: { netns: netns.name }, openNetns });
    const doc = parseStateDocument(JSON.stringify({ version: 1, plugins: { firewall: section } }), {
      source: 'bench',
      registry,
    });
    const transaction = await measureWith(
      empty,
      async () => {
        const r = await engine.apply(doc);
        if (r.status !== 'committed') throw new Error(`apply: ${r.status}`);
      },
      5,
    );

    log('nft -f of the same ruleset');
    const nftFile = nftHere ? await measureWith(empty, () => nft(['-f', file]), 7) : undefined;

    log('read it back');
    const query = await measure(() => readRuleset(client), { iterations: 15 });
    const pluginQuery = await measure(() => plugin.query(engine.context('firewall')), { iterations: 10 });
    const nftJson = nftHere
      ? await measure(() => nft(['-j', 'list', 'ruleset']), { iterations: 15 })
      : undefined;
    const nftText = nftHere ? await measure(() => nft(['list', 'ruleset']), { iterations: 15 }) : undefined;
    const read = await readRuleset(client);
    const readRules = read.tables[0].chains[0].rules.length;
    const readElements = read.tables[0].sets[0].elements.length;
    if (readRules !== RULES || readElements !== ELEMENTS)
      throw new Error(`read back ${readRules} rules and ${readElements} elements`);

    log('change one rule and add 10 elements in the loaded ruleset');
    // The two documents are parsed (and validated) once, outside the measurement.
    const edited = structuredClone(section);
    edited.tables[0].chains[0].rules[500].match.tcp.dport = 65000;
    edited.tables[0].sets[0].elements.push(...Array.from({ length: 10 }, (_, i) => `198.18.${i}.0/24`));
    const docs = [
      doc,
      parseStateDocument(JSON.stringify({ version: 1, plugins: { firewall: edited } }), {
        source: 'bench',
        registry,
      }),
    ];
    let flip = 0;
    await engine.apply(doc);
    const editTx = await measure(
      async () => {
        flip ^= 1;
        const r = await engine.apply(docs[flip]);
        if (r.status !== 'committed') throw new Error(`edit: ${r.status}`);
      },
      { iterations: 6, warmup: 2 },
    );

    return [
      table(
        ['Task', 'op-dbus', 'nft(8) via ip netns exec', 'Ratio'],
        [
          [
            `Write ${ELEMENTS} set elements + ${RULES} rules (empty table → loaded)`,
            `${ms(native.median)} native client (${messages} messages, ${(bytes / 1024).toFixed(0)} KiB, one atomic batch)`,
            `${ms(nftFile?.median)} \`nft -f\``,
            nftFile ? `${ratio(nftFile.median, native.median)} faster` : 'n/a',
          ],
          [
            'The same as a verified transaction',
            `${ms(transaction.median)} firewall plugin (plan, checkpoint, fsync'd journal, batch, verify)`,
            `${ms(nftFile?.median)} \`nft -f\` (write only, no verify, no rollback)`,
            nftFile ? `${ratio(transaction.median, nftFile.median)} the time` : 'n/a',
          ],
          [
            'Read it back',
            `${ms(query.median)} native client, readable form (plugin query: ${ms(pluginQuery.median)})`,
            `${ms(nftJson?.median)} \`nft -j list ruleset\` (text: ${ms(nftText?.median)})`,
            nftJson ? `${ratio(nftJson.median, query.median)} faster` : 'n/a',
          ],
          [
            'Change 1 rule, add 10 elements, in the loaded ruleset',
            `${ms(editTx.median)} transaction (2 changes; 1 rule replaced in place, 10 elements added)`,
            'n/a (a script edits by handle: `nft replace rule … handle N`)',
            '',
          ],
        ],
      ),
      '',
      `Medians of ${native.n}/${transaction.n}/${nftFile?.n ?? 0} writes (each from an empty ruleset) and ${query.n} reads. The native`,
      'client builds the whole ruleset as one nfnetlink batch (rules compiled from the readable form,',
      'elements split into messages below the 64 KiB attribute limit) and sends it in one sendmsg(2);',
      'the kernel commits it atomically. `nft -f` parses the text, evaluates it and sends a batch too;',
      "it also spawns a process. Reading decodes every rule back into op-dbus's readable form (and checks",
      'that it writes back to the same expressions); `nft -j` renders JSON. The transaction reads the',
      'ruleset three times (plan, checkpoint, verify) besides writing it, and fsyncs its journal.',
    ].join('\n');
  } finally {
    plugin.close();
    client.close();
    await netns.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}
