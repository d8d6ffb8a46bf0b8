import { openNetns } from '@opdbus/netlink';
import { probeSandbox, startSystemdContainer, type SystemdContainer } from '@opdbus/sandbox';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { createDnsPlugin, type DnsSection } from '../src/index.js';
import { dnsContainerPackages } from './container.js';

const probe = probeSandbox().container;
let ct: SystemdContainer | undefined;

// systemd-resolved in a systemd-nspawn container; the links are a veth pair inside it.
describePluginConformance<DnsSection>(
  createDnsPlugin(),
  async () => {
    ct = await startSystemdContainer({ packages: dnsContainerPackages });
    const added = await ct.exec('ip', ['link', 'add', 'dns0', 'type', 'veth', 'peer', 'name', 'dns1']);
    if (added.code !== 0) throw new Error(`ip link add failed: ${added.stderr}`);
    const container = ct;
    return {
      target: { busAddress: ct.busAddress, root: ct.rootDir, netns: `/proc/${ct.leaderPid}/ns/net` },
      openNetns,
      desired: {
        global: { dnssec: 'no', domains: ['global.test'] },
        links: {
          dns0: {
            dns: ['192.0.2.53', '2001:db8::53#dns.example'],
            domains: ['example.test', '~corp.test'],
            defaultRoute: false,
            dnssec: 'allow-downgrade',
            dnsOverTls: 'opportunistic',
            llmnr: 'no',
            multicastDns: 'no',
          },
        },
      },
      // resolved refuses the null address after dns0's LLMNR was set: rolled back.
      failing: { links: { dns0: { llmnr: 'resolve' }, dns1: { dns: ['0.0.0.0'] } } },
      drift: async () => {
        const result = await container.exec('resolvectl', ['dns', 'dns0', '192.0.2.99']);
        if (result.code !== 0) throw new Error(`resolvectl failed: ${result.stderr}`);
      },
      teardown: () => container.stop(),
    };
  },
  { requires: probe, setupTimeoutMs: 600_000 },
);
