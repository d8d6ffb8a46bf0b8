import { probeSandbox, type SystemdContainer } from '@opdbus/sandbox';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { writeFile } from 'node:fs/promises';
import { createContainersPlugin } from '../src/plugin.js';
import type { ContainersSection, MachineEntry } from '../src/schema.js';
import { renderSettings } from '../src/settings.js';
import { makeTinyTree, must, startHost } from './helpers.js';

const machine = (name: string, extra: Partial<MachineEntry> = {}): MachineEntry => ({
  name,
  source: { directory: '/srv/tiny' },
  boot: false,
  command: ['/bin/sleep', 'infinity'],
  bind: { readOnly: ['/usr'] },
  ...extra,
});

// The machines run inside the sandbox's systemd-nspawn container, whose systemd and machined are
// real; the plugin reaches them over the container's system bus.
describePluginConformance<ContainersSection>(
  createContainersPlugin({ jobTimeoutMs: 60_000 }),
  async () => {
    const ct: SystemdContainer = await startHost();
    await makeTinyTree(ct, '/srv/tiny');
    // A machine that exists before, made by hand (as an operator would): image, settings, started.
    await must(ct, 'cp', ['-a', '/srv/tiny', '/var/lib/machines/pre']);
    await must(ct, 'mkdir', ['-p', '/etc/systemd/nspawn']);
    await writeFile(ct.path('/etc/systemd/nspawn/pre.nspawn'), renderSettings(machine('pre')));
    await must(ct, 'systemctl', ['start', 'systemd-nspawn@pre.service']);
    return {
      target: { busAddress: ct.busAddress, root: ct.rootDir },
      desired: {
        machines: [
          machine('web', { enabled: true, limits: { memoryMax: '128M', tasksMax: 32 } }),
          { name: 'pre', state: 'stopped' },
        ],
      },
      // The second machine binds a directory that does not exist: nspawn fails while setting it
      // up, before it reports the machine started, after the first machine started.
      failing: {
        machines: [machine('first'), machine('broken', { bind: { readOnly: ['/usr', '/no/such/dir'] } })],
      },
      drift: async () => {
        await must(ct, 'systemctl', ['stop', 'systemd-nspawn@web.service']);
      },
      teardown: () => ct.stop(),
    };
  },
  { requires: probeSandbox().container, setupTimeoutMs: 900_000, watchTimeoutMs: 30_000 },
);
