import { describe, expect, it } from 'vitest';
import { diffContainers, sizeBytes } from './plugin.js';
import { parseSettings, renderSettings, splitArgs } from './settings.js';

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
