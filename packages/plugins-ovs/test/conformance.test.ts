import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { probeSandbox, startOvs } from '@opdbus/sandbox';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { createOvsPlugin } from '../src/plugin.js';
import type { OvsSection } from '../src/schema.js';

const run = promisify(execFile);
const probe = probeSandbox().vswitchd;
const plugin = createOvsPlugin({ vswitchdTimeoutMs: 10_000 });

// Against ovsdb-server and ovs-vswitchd (userspace datapath, in a sandbox namespace): the plugin
// waits for the switch to apply each transaction, so the failing document below fails for real
// — after its transaction committed — and must be rolled back by the engine.
describePluginConformance<OvsSection>(
  plugin,
  async () => {
    const ovs = await startOvs({ vswitchd: true });
    return {
      target: { ovsdbAddress: ovs.address },
      desired: {
        bridges: [
          {
            name: 'cbr0',
            datapath_type: 'netdev',
            fail_mode: 'standalone',
            protocols: ['OpenFlow10', 'OpenFlow13'],
            external_ids: { owner: 'conformance' },
            ports: [
              { name: 'cp1', tag: 10, interfaces: [{ name: 'cp1', type: 'internal' }] },
              {
                name: 'cp2',
                trunks: [20, 30],
                vlan_mode: 'trunk',
                interfaces: [{ name: 'cp2', type: 'internal' }],
              },
            ],
          },
        ],
        managers: [{ target: `punix:${join(ovs.dir, 'manager.sock')}`, inactivity_probe: 30_000 }],
      },
      // The bridge and one good port commit; then ovs-vswitchd cannot open the device "nodev0"
      // (there is none): the plugin reports the interface error and the engine restores.
      failing: {
        bridges: [
          {
            name: 'fbr0',
            datapath_type: 'netdev',
            ports: [{ name: 'fp1', interfaces: [{ name: 'fp1', type: 'internal' }] }, { name: 'nodev0' }],
          },
        ],
      },
      drift: async () => {
        await run('ovs-vsctl', [`--db=${ovs.address}`, '--no-wait', 'set', 'Port', 'cp1', 'tag=99']);
      },
      teardown: async () => {
        await plugin.close();
        await ovs.stop();
      },
    };
  },
  { requires: probe },
);
