import { probeSandbox, startSystemdContainer } from '@opdbus/sandbox';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { createHostnamePlugin, type HostnameSection } from '../src/plugin.js';

const probe = probeSandbox().container;

// systemd-hostnamed inside a systemd-nspawn container (its own UTS namespace and /etc).
describePluginConformance<HostnameSection>(
  createHostnamePlugin(),
  async () => {
    const ct = await startSystemdContainer();
    return {
      target: { busAddress: ct.busAddress },
      desired: {
        static: 'opdbus-host',
        pretty: 'op-dbus Test Host',
        chassis: 'server',
        deployment: 'staging',
        location: 'rack 4, row B',
      },
      // hostnamed refuses an icon name with a slash after the location was set: rolled back.
      failing: { location: 'somewhere else', iconName: 'bad/icon' },
      drift: async () => {
        const result = await ct.exec('hostnamectl', ['set-location', 'moved out of band']);
        if (result.code !== 0) throw new Error(`hostnamectl failed: ${result.stderr}`);
      },
      teardown: () => ct.stop(),
    };
  },
  // The first container on a machine builds the cached image (about a minute).
  { requires: probe, setupTimeoutMs: 600_000 },
);
