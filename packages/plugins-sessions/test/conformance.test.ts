import { probeSandbox, startSystemdContainer } from '@opdbus/sandbox';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { createSessionsPlugin, type SessionsSection } from '../src/plugin.js';

const probe = probeSandbox().container;

// systemd-logind inside a systemd-nspawn container; lingering starts the user's own manager there.
// logind only serves callers whose pid it can see: connect through the in-container bridge.
describePluginConformance<SessionsSection>(
  createSessionsPlugin(),
  async () => {
    const ct = await startSystemdContainer();
    const useradd = await ct.exec('useradd', ['--create-home', 'opdbus']);
    if (useradd.code !== 0) throw new Error(`useradd failed: ${useradd.stderr}`);
    return {
      target: { busAddress: await ct.insideBusAddress(), root: ct.rootDir },
      desired: { linger: { opdbus: true } },
      // logind refuses lingering for a uid that has no user, after "opdbus" was changed: rolled back.
      failing: { linger: { opdbus: true, '4242': true } },
      drift: async () => {
        const result = await ct.exec('loginctl', ['disable-linger', 'opdbus']);
        if (result.code !== 0) throw new Error(`loginctl failed: ${result.stderr}`);
      },
      teardown: () => ct.stop(),
    };
  },
  // The first container on a machine builds the cached image (about a minute).
  { requires: probe, setupTimeoutMs: 600_000 },
);
