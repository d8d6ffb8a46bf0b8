import { probeSandbox, startSystemdContainer } from '@opdbus/sandbox';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { createTimedatePlugin, type TimedateSection } from '../src/plugin.js';

const probe = probeSandbox().container;

// systemd-timedated inside a systemd-nspawn container: it has no CAP_SYS_TIME there, so the host
// clock is never touched. Its NTP service is a unit the test names in ntp-units.d (timedated
// enables and starts whatever unit that list names).
const ntpUnit =
  '[Unit]\nDescription=op-dbus test NTP service\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n';

describePluginConformance<TimedateSection>(
  createTimedatePlugin(),
  async () => {
    const ct = await startSystemdContainer({
      files: {
        '/usr/lib/systemd/ntp-units.d/80-opdbus-test.list': 'opdbus-ntp.service\n',
        '/etc/systemd/system/opdbus-ntp.service': ntpUnit,
      },
    });
    return {
      target: { busAddress: ct.busAddress },
      desired: { timezone: 'Europe/Berlin', ntp: true },
      // timedated refuses an unknown zone after NTP was switched on: rolled back.
      failing: { ntp: true, timezone: 'Nowhere/Atlantis' },
      drift: async () => {
        const result = await ct.exec('timedatectl', ['set-timezone', 'Asia/Tokyo']);
        if (result.code !== 0) throw new Error(`timedatectl failed: ${result.stderr}`);
      },
      teardown: () => ct.stop(),
    };
  },
  // The first container on a machine builds the cached image (about a minute).
  { requires: probe, setupTimeoutMs: 600_000 },
);
