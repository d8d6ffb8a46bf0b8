import { probeSandbox, startSystemdContainer } from '@opdbus/sandbox';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { createSystemdPlugin } from '../src/plugin.js';
import type { SystemdSection } from '../src/schema.js';

const probe = probeSandbox().container;

const service = (description: string, exec: string, extra = ''): string =>
  `[Unit]\nDescription=${description}\n\n[Service]\nExecStart=${exec}\n${extra}\n[Install]\nWantedBy=multi-user.target\n`;

describePluginConformance<SystemdSection>(
  createSystemdPlugin({ jobTimeoutMs: 30_000 }),
  async () => {
    const ct = await startSystemdContainer();
    return {
      target: { busAddress: ct.busAddress, root: ct.rootDir },
      desired: {
        units: {
          'opdbus-web.service': {
            content: service('op-dbus conformance service', '/bin/sleep infinity'),
            dropIns: { '10-env.conf': '[Service]\nEnvironment=GREETING=hello\n' },
            enabled: true,
            active: true,
            properties: {
              CPUWeight: 300,
              MemoryMax: '256M',
              CPUAffinity: '0',
              NUMAPolicy: 'bind',
              NUMAMask: [0],
            },
          },
        },
        timers: {
          'opdbus-backup': { onCalendar: 'daily', command: '/bin/true', persistent: true },
        },
      },
      // The second unit's start job fails (oneshot /bin/false): the first must be rolled back.
      failing: {
        units: {
          'opdbus-first.service': {
            content: service('first', '/bin/sleep infinity'),
            enabled: true,
            active: true,
          },
          'opdbus-broken.service': {
            content: '[Service]\nType=oneshot\nExecStart=/bin/false\n',
            active: true,
          },
        },
      },
      drift: async () => {
        const result = await ct.exec('systemctl', ['stop', 'opdbus-web.service']);
        if (result.code !== 0) throw new Error(`systemctl stop failed: ${result.stderr}`);
      },
      teardown: () => ct.stop(),
    };
  },
  // The first container on a machine builds the cached image (about a minute).
  { requires: probe, setupTimeoutMs: 600_000 },
);
