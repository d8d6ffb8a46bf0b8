import { describe, expect, it } from 'vitest';
import { diffContainers, sizeBytes } from './plugin.js';
import { parseSettings, renderSettings, splitArgs } from './settings.js';
import { containersSchema } from './schema.js';

describe('nspawn settings', () => {
  it('renders what systemd.nspawn(5) reads, and reads it back', () => {
    const text = renderSettings({
      name: 'web',
      boot: false,
      command: ['/bin/sh', '-c', 'echo "hi there" && exec sleep infinity'],
      bind: { readOnly: ['/usr'], readWrite: ['/srv/data:/data'] },
      network: { bridge: 'br0' },
    });
    expect(text).toContain(
      '[Exec]\nBoot=no\nParameters=/bin/sh -c "echo \\"hi there\\" && exec sleep infinity"\nPrivateUsers=no\n',
    );
    expect(text).toContain('[Files]\nBindReadOnly=/usr\nBind=/srv/data:/data\n');
    expect(text).toContain('[Network]\nBridge=br0\n');
    expect(parseSettings(text)).toEqual({
      boot: false,
      command: ['/bin/sh', '-c', 'echo "hi there" && exec sleep infinity'],
      bind: { readOnly: ['/usr'], readWrite: ['/srv/data:/data'] },
      network: { bridge: 'br0' },
    });
    expect(parseSettings(renderSettings({ name: 'os' }))).toEqual({ boot: true, network: { private: true } });
    expect(parseSettings(renderSettings({ name: 'h', network: { host: true } })).network).toEqual({
      host: true,
    });
  });

  it('splits Parameters= like systemd: quotes and escapes', () => {
    expect(splitArgs(`a 'b c' "d \\"e\\"" f\\ g`)).toEqual(['a', 'b c', 'd "e"', 'f g']);
  });
});

describe('diffContainers', () => {
  const running = {
    name: 'web',
    state: 'running' as const,
    enabled: true,
    boot: false,
    command: ['/bin/sleep', 'infinity'],
    network: { private: true as const },
    limits: { memoryMax: 268435456, tasksMax: 64 },
  };

  it('compares only what the desired entry names, sizes in any unit', () => {
    expect(
      diffContainers(
        { machines: [{ name: 'web', limits: { memoryMax: '256M' }, enabled: true }] },
        { machines: [running] },
      ),
    ).toEqual([]);
    expect(sizeBytes('2G')).toBe(2 * 1024 ** 3);
  });

  it('creates, updates (restarting for new settings) and removes', () => {
    const changes = diffContainers(
      {
        machines: [
          { name: 'web', boot: false, command: ['/bin/sleep', '1000'] },
          { name: 'new', source: { directory: '/srv/new' } },
          { name: 'old', state: 'absent' },
        ],
      },
      { machines: [running, { name: 'new', state: 'absent' }, { name: 'old', state: 'stopped' }] },
    );
    expect(changes.map((c) => c.summary)).toEqual([
      'set machine web: command (restarts it)',
      'create machine new from /srv/new (running)',
      'remove machine old and its image',
    ]);
  });
});

describe('a veth on an Open vSwitch bridge', () => {
  it('names the host end in VirtualEthernetExtra= and reads the bridge back', () => {
    const text = renderSettings({ name: 'web', network: { ovsBridge: 'br-int' } });
    expect(text).toContain('VirtualEthernet=no\nVirtualEthernetExtra=ve-web:host0\n');
    expect(parseSettings(text).network).toEqual({ ovsBridge: 'br-int', hostInterface: 've-web' });
    const detached = renderSettings({ name: 'web', network: { ovsBridge: null, hostInterface: 'v-1' } });
    expect(parseSettings(detached).network).toEqual({ ovsBridge: null, hostInterface: 'v-1' });
  });

  it('moves the port without a restart, and restarts for a new host end', () => {
    const running = {
      name: 'web',
      state: 'running' as const,
      boot: true,
      network: { ovsBridge: 'br-a', hostInterface: 've-web' },
    };
    const move = diffContainers(
      { machines: [{ name: 'web', network: { ovsBridge: 'br-b' } }] },
      { machines: [running] },
    );
    expect(move.map((c) => c.summary)).toEqual(['set machine web: network']);
    const rename = diffContainers(
      { machines: [{ name: 'web', network: { ovsBridge: 'br-a', hostInterface: 'v-web' } }] },
      { machines: [running] },
    );
    expect(rename.map((c) => c.summary)).toEqual(['set machine web: network (restarts it)']);
  });

  it('asks for the host end name of a machine whose name is too long for ve-NAME', () => {
    const r = containersSchema.safeParse({
      machines: [{ name: 'a-long-machine', network: { ovsBridge: 'br' } }],
    });
    expect(r.error?.issues[0]).toMatchObject({ path: ['machines', 0, 'network', 'hostInterface'] });
  });
});

describe('the Podman diff', () => {
  const web = { name: 'web', state: 'running' as const, image: 'localhost/a:1', network: 'none' as const };
  it('starts and stops in place, recreates for image, command, network or limits', () => {
    const observed = { podman: [web, { name: 'old', state: 'stopped' as const, image: 'localhost/a:1' }] };
    expect(
      diffContainers(
        {
          podman: [
            { name: 'web', state: 'stopped' },
            { name: 'old', state: 'absent' },
            { name: 'new', image: 'localhost/b:2' },
          ],
        },
        observed,
      ).map((c) => c.summary),
    ).toEqual([
      'set podman container web: stopped',
      'remove podman container old',
      'create podman container new from localhost/b:2 (running)',
    ]);
    expect(
      diffContainers({ podman: [{ name: 'web', limits: { memoryMax: '1M' } }] }, observed).map(
        (c) => c.summary,
      ),
    ).toEqual(['set podman container web: memoryMax 1048576 (recreates it)']);
    expect(diffContainers({ podman: [{ name: 'web', image: 'localhost/a:1' }] }, observed)).toEqual([]);
  });
});
