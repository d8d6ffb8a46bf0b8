import { join } from 'node:path';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { createContainersPlugin } from '../src/plugin.js';
import type { ContainersSection, PodmanContainer } from '../src/schema.js';
import { TINY_IMAGE, podmanReady, startPodman } from './podman.js';

const pod = (name: string, extra: Partial<PodmanContainer> = {}): PodmanContainer => ({
  name,
  image: TINY_IMAGE,
  command: ['/usr/bin/sleep', 'infinity'],
  network: 'none',
  ...extra,
});

// The Podman backend through the shared conformance suite: a private `podman system service`
// whose socket is at run/podman/podman.sock under the target root (the plugin's default place),
// and no system bus, so machined is probed and found missing.
describePluginConformance<ContainersSection>(
  // sleep(1) as PID 1 ignores SIGTERM: give it a second before SIGKILL.
  createContainersPlugin({ podmanStopTimeoutS: 1 }),
  async () => {
    const pm = await startPodman();
    // A container that exists before, made by hand and running.
    await pm.podman(
      'run',
      '-d',
      '--name',
      'pre',
      '--network',
      'none',
      TINY_IMAGE,
      '/usr/bin/sleep',
      'infinity',
    );
    return {
      target: { root: pm.dir, busAddress: `unix:path=${join(pm.dir, 'no-bus')}` },
      desired: {
        podman: [
          pod('web', { limits: { memoryMax: '64M', tasksMax: 32 } }),
          { name: 'pre', state: 'stopped' },
        ],
      },
      // The second container's image does not exist: Podman refuses it after the first was made.
      failing: { podman: [pod('first'), pod('broken', { image: 'localhost/no-such-image:1' })] },
      drift: async () => {
        await pm.podman('stop', '-t', '0', 'web');
      },
      teardown: () => pm.stop(),
    };
  },
  { requires: podmanReady, setupTimeoutMs: 300_000, watchTimeoutMs: 30_000 },
);
