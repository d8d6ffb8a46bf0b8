import { probeSandbox, type SystemdContainer } from '@opdbus/sandbox';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { createPackagesPlugin, type PackagesSection } from '../src/index.js';
import { startPackagesContainer } from './archive.js';

const probe = probeSandbox().container;
let ct: SystemdContainer | undefined;

// PackageKit (apt backend) and polkit in a systemd-nspawn container, a local archive of .debs built by the test.
describePluginConformance<PackagesSection>(
  createPackagesPlugin(),
  async () => {
    ct = await startPackagesContainer([
      { name: 'opdbus-alpha', version: '1.0' },
      { name: 'opdbus-alpha', version: '2.0' },
      { name: 'opdbus-beta', version: '1.0' },
      { name: 'opdbus-broken', version: '1.0', failingPreinst: true },
    ]);
    const container = ct;
    return {
      target: { busAddress: ct.busAddress, root: ct.rootDir },
      desired: { 'opdbus-alpha': { version: '1.0' }, 'opdbus-beta': {} },
      // alpha is installed, then broken's preinst fails: alpha is removed again.
      failing: { 'opdbus-alpha': { version: '2.0' }, 'opdbus-broken': {} },
      drift: async () => {
        const r = await container.exec('dpkg', ['--purge', 'opdbus-beta']);
        if (r.code !== 0) throw new Error(`dpkg --purge failed: ${r.stderr}`);
      },
      teardown: () => container.stop(),
    };
  },
  // Every apply is a PackageKit transaction of a few seconds.
  { requires: probe, setupTimeoutMs: 600_000, watchTimeoutMs: 30_000 },
);
