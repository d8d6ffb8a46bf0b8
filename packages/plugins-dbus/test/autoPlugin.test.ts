import { isOpdbusError } from '@opdbus/core';
import { probeSandbox, startSystemdContainer } from '@opdbus/sandbox';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { expect, it } from 'vitest';
import { createDbusAutoPlugin, type AutoSection } from '../src/index.js';
import { describeIf } from '@opdbus/sandbox/testing';

const probe = probeSandbox().container;
const manager = '/org/freedesktop/systemd1';
const iface = 'org.freedesktop.systemd1.Manager';

// The auto plugin on the container's systemd Manager, writable: LogLevel and LogTarget are
// readwrite properties that do not emit PropertiesChanged, so watch polls them.
describePluginConformance<AutoSection>(
  createDbusAutoPlugin({
    name: 'systemd-manager',
    destination: 'org.freedesktop.systemd1',
    objects: [manager],
    interfaces: [iface],
    writable: true,
    pollIntervalMs: 100,
  }),
  async () => {
    const ct = await startSystemdContainer();
    return {
      target: { busAddress: ct.busAddress },
      desired: { [manager]: { [iface]: { LogLevel: 'debug', LogTarget: 'console' } } },
      // systemd refuses an unknown log target after the level was set: rolled back.
      failing: { [manager]: { [iface]: { LogLevel: 'notice', LogTarget: 'nowhere' } } },
      drift: async () => {
        const result = await ct.exec('systemctl', ['log-level', 'info']);
        if (result.code !== 0) throw new Error(`systemctl log-level failed: ${result.stderr}`);
      },
      teardown: () => ct.stop(),
    };
  },
  // The first container on a machine builds the cached image (about a minute).
  { requires: probe, setupTimeoutMs: 600_000 },
);

describeIf(probe, 'the auto plugin, read-only', () => {
  it('exposes every property of hostnamed as state and refuses writes', { timeout: 600_000 }, async () => {
    await using ct = await startSystemdContainer();
    const plugin = createDbusAutoPlugin({ name: 'hostname1', destination: 'org.freedesktop.hostname1' });
    const ctx = {
      target: { busAddress: ct.busAddress },
      netns: undefined,
      logger: (await import('@opdbus/core')).silentLogger,
      stateDir: '/tmp',
      signal: undefined,
    };
    expect(await plugin.probe(ctx)).toMatchObject({ available: true });
    const state = await plugin.query(ctx);
    const props = state['/org/freedesktop/hostname1']?.['org.freedesktop.hostname1'];
    expect(props?.StaticHostname).toBe(ct.id);
    expect(props?.Chassis).toBe('container');
    const [change] = plugin.diff(
      { '/org/freedesktop/hostname1': { 'org.freedesktop.hostname1': { Location: 'x' } } },
      state,
    );
    expect(change).toBeDefined();
    const { makeChange } = await import('@opdbus/core');
    const err = await plugin.apply(makeChange('hostname1', change!), ctx).catch((e: unknown) => e);
    expect(isOpdbusError(err, 'OPDBUS_ERR_DBUS_READ_ONLY')).toBe(true);
  });
});
