import { openNetns } from '@opdbus/netlink';
import { createNetns, probeSandbox } from '@opdbus/sandbox';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { createFirewallPlugin } from '../src/plugin.js';
import type { FirewallSection } from '../src/schema.js';
import { nft, nftTool } from './helpers.js';

describePluginConformance<FirewallSection>(
  createFirewallPlugin(),
  async () => {
    const netns = await createNetns();
    // Something to change that exists before: a filter table as `nft -f` writes it.
    await nft(
      netns,
      ['-f', '-'],
      'table inet filter {\n  set blocked { type ipv4_addr; flags interval; elements = { 192.0.2.0/24 } }\n  chain input {\n    type filter hook input priority filter; policy accept;\n    ct state established,related accept\n    tcp dport 23 drop comment "telnet"\n  }\n}\ntable ip old {\n  chain c {\n  }\n}\n',
    );
    return {
      target: { netns: netns.name },
      openNetns,
      desired: {
        tables: [
          {
            family: 'inet',
            name: 'filter',
            sets: [
              {
                name: 'blocked',
                type: 'ipv4_addr',
                flags: ['interval'],
                elements: ['192.0.2.0/24', '198.51.100.0/24'],
              },
              { name: 'admins', type: 'ipv4_addr', elements: ['10.0.0.5', '10.0.0.6'] },
            ],
            chains: [
              {
                name: 'input',
                hook: 'input',
                priority: 'filter',
                policy: 'drop',
                rules: [
                  { name: 'established', match: { ct: { state: 'established,related' } }, verdict: 'accept' },
                  { name: 'loopback', match: { iif: 'lo' }, verdict: 'accept' },
                  {
                    name: 'blocked',
                    match: { ip: { saddr: '@blocked' } },
                    statements: ['counter'],
                    verdict: 'drop',
                  },
                  { name: 'ssh', match: { ip: { saddr: '@admins' }, tcp: { dport: 22 } }, verdict: 'accept' },
                  { name: 'web', match: { tcp: { dport: [80, 443] } }, verdict: { jump: 'web' } },
                ],
              },
              {
                name: 'web',
                rules: [{ statements: [{ limit: { rate: 100, per: 'second' } }], verdict: 'accept' }],
              },
            ],
          },
          {
            family: 'ip',
            name: 'nat',
            chains: [
              {
                name: 'postrouting',
                type: 'nat',
                hook: 'postrouting',
                priority: 'srcnat',
                rules: [
                  { match: { oifname: 'eth*', ip: { saddr: '10.0.0.0/8' } }, statements: ['masquerade'] },
                ],
              },
            ],
          },
          { family: 'ip', name: 'old', state: 'absent' },
        ],
      },
      // The last rule jumps to a chain that does not exist: the kernel refuses the batch, after
      // the table, the chain and the first rule were accepted in it.
      failing: {
        tables: [
          {
            family: 'inet',
            name: 'failing',
            chains: [{ name: 'c', rules: [{ verdict: 'accept' }, { verdict: { jump: 'missing' } }] }],
          },
          { family: 'inet', name: 'filter', chains: [{ name: 'input', hook: 'input', policy: 'accept' }] },
        ],
      },
      drift: async () => {
        await nft(netns, ['insert', 'rule', 'inet', 'filter', 'input', 'tcp', 'dport', '8080', 'accept']);
      },
      teardown: () => netns.destroy(),
    };
  },
  { requires: [probeSandbox().netns, nftTool] },
);
