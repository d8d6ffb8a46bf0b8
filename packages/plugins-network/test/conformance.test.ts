import { openNetns } from '@opdbus/netlink';
import { createNetns, probeSandbox } from '@opdbus/sandbox';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { createNetworkPlugin } from '../src/plugin.js';
import type { NetworkSection } from '../src/schema.js';

const probe = probeSandbox().netns;

describePluginConformance<NetworkSection>(
  createNetworkPlugin(),
  async () => {
    const netns = await createNetns();
    // Something to change that exists before: a bridge with an address and a route.
    for (const args of [
      ['link', 'add', 'pre0', 'type', 'bridge'],
      ['link', 'set', 'pre0', 'up'],
      ['addr', 'add', '10.20.0.1/24', 'dev', 'pre0'],
      ['route', 'add', '10.21.0.0/16', 'via', '10.20.0.254', 'metric', '7'],
    ]) {
      const result = await netns.exec('ip', args);
      if (result.code !== 0) throw new Error(`ip ${args.join(' ')} failed: ${result.stderr}`);
    }
    return {
      target: { netns: netns.name },
      openNetns,
      desired: {
        links: [
          { name: 'br0', kind: 'bridge', state: 'up', mtu: 1500 },
          { name: 'veth0', kind: 'veth', peer: 'veth0p', master: 'br0', state: 'up' },
          {
            name: 'vx100',
            kind: 'vxlan',
            vxlan: { id: 100, local: '10.0.0.1', port: 4789 },
            master: 'br0',
            state: 'up',
          },
          { name: 'pre0', mtu: 1400 },
        ],
        addresses: [
          { link: 'br0', address: '10.0.0.1/24' },
          { link: 'br0', address: 'fd00::1/64', flags: ['nodad'] },
          { link: 'pre0', address: '10.20.0.1/24', state: 'absent' },
        ],
        routes: [
          { to: '10.9.0.0/16', via: '10.0.0.254', metric: 100 },
          { to: '10.21.0.0/16', metric: 7, state: 'absent' },
        ],
      },
      // The kernel refuses the MTU of the last link (veth allows at most 65535) after the
      // others were created: the transaction must put everything back.
      failing: {
        links: [
          { name: 'fail0', kind: 'bridge', state: 'up' },
          { name: 'pre0', state: 'down' },
          { name: 'fail1', kind: 'veth', peer: 'fail1p', master: 'fail0', mtu: 100000 },
        ],
        addresses: [{ link: 'fail0', address: '10.30.0.1/24' }],
      },
      drift: async () => {
        const result = await netns.exec('ip', ['link', 'set', 'veth0', 'down']);
        if (result.code !== 0) throw new Error(`ip link set down failed: ${result.stderr}`);
      },
      teardown: () => netns.destroy(),
    };
  },
  { requires: probe },
);
