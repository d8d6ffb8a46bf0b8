import { openNetns } from '@opdbus/netlink';
import { createNetns, probeSandbox } from '@opdbus/sandbox';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { createSysctlPlugin, type SysctlSection } from '../src/plugin.js';

const probe = probeSandbox().netns;
const keys = ['net.ipv4.ip_forward', 'net.core.somaxconn', 'net.ipv4.tcp_rmem', 'net.ipv4.ip_default_ttl'];

describePluginConformance<SysctlSection>(
  createSysctlPlugin({ watchIntervalMs: 50, watchKeys: keys }),
  async () => {
    const netns = await createNetns();
    return {
      target: { netns: netns.name },
      openNetns,
      desired: {
        'net.ipv4.ip_forward': 1,
        'net.core.somaxconn': 2048,
        'net.ipv4.tcp_rmem': '4096 65536 1048576',
      },
      // The kernel refuses the third value (EINVAL): the first two must be rolled back.
      failing: { 'net.ipv4.ip_default_ttl': 12, 'net.core.somaxconn': 99, 'net.ipv4.ip_forward': 'yes' },
      drift: async () => {
        const result = await netns.exec('sysctl', ['-w', 'net.ipv4.ip_forward=0']);
        if (result.code !== 0) throw new Error(`sysctl -w failed: ${result.stderr}`);
      },
      teardown: () => netns.destroy(),
    };
  },
  { requires: probe },
);
