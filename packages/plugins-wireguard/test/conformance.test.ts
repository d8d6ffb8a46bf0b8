import { openNetns } from '@opdbus/netlink';
import { createNetns } from '@opdbus/sandbox';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { generatePrivateKey, publicKeyOf, encodeKey } from '../src/keys.js';
import { createWireguardPlugin } from '../src/plugin.js';
import type { WireguardSection } from '../src/schema.js';
import { must, uniqueIfname, wireguardRequirements } from './helpers.js';

const peer = (): string => encodeKey(publicKeyOf(generatePrivateKey()));

describePluginConformance<WireguardSection>(
  createWireguardPlugin({ watchPollMs: 500 }),
  async () => {
    const netns = await createNetns();
    // Something to change that exists before: an interface made by hand (wireguard-go + wg).
    const pre = uniqueIfname('wgp');
    const fresh = uniqueIfname('wgn');
    const fail = uniqueIfname('wgf');
    const oldPeer = peer();
    await must(netns, 'wireguard-go', [pre]);
    await must(netns, 'wg', [
      'set',
      pre,
      'listen-port',
      '51110',
      'peer',
      oldPeer,
      'allowed-ips',
      '10.66.0.9/32',
    ]);
    await must(netns, 'ip', ['link', 'set', pre, 'up']);
    const [p1, p2] = [peer(), peer()];
    return {
      target: { netns: netns.name },
      openNetns,
      desired: {
        interfaces: [
          {
            name: fresh,
            privateKey: { stored: `conformance-${fresh}` },
            listenPort: 51111,
            mtu: 1380,
            addresses: ['10.66.1.1/24', 'fd66::1/64'],
            peers: [
              {
                publicKey: p1,
                endpoint: '192.0.2.1:51820',
                allowedIPs: ['10.66.1.2/32'],
                persistentKeepalive: 25,
              },
              { publicKey: p2, allowedIPs: ['10.66.2.0/24', 'fd66:2::/64'] },
            ],
          },
          {
            name: pre,
            state: 'up',
            fwmark: 42,
            peers: [
              { publicKey: oldPeer, state: 'absent' },
              { publicKey: p1, allowedIPs: ['10.66.0.1/32'] },
            ],
          },
        ],
      },
      // The second interface asks for the port the first one just bound: wireguard-go answers
      // EADDRINUSE after the first was created, and the transaction must delete it again.
      failing: {
        interfaces: [
          { name: fail, listenPort: 51112, state: 'up' },
          { name: pre, listenPort: 51112 },
        ],
      },
      drift: async () => {
        await must(netns, 'ip', ['link', 'set', pre, 'down']);
      },
      teardown: () => netns.destroy(),
    };
  },
  { requires: wireguardRequirements() },
);
