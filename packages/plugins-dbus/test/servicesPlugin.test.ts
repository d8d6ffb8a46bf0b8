// The `dbus` plugin (any service's properties, by bus name) against the real systemd, hostnamed
// and their bus in a systemd-nspawn container.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Engine,
  PluginRegistry,
  isOpdbusError,
  makeChange,
  parseStateDocument,
  silentLogger,
  type PluginContext,
} from '@opdbus/core';
import { probeSandbox, startSystemdContainer, type SystemdContainer } from '@opdbus/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDbusServicesPlugin, isWellKnownBusName, type DbusServicesSection } from '../src/index.js';
import { describeIf } from '@opdbus/sandbox/testing';

const probe = probeSandbox().container;
const hostname1 = 'org.freedesktop.hostname1';
const hostnamePath = '/org/freedesktop/hostname1';
const systemd1 = 'org.freedesktop.systemd1';
const manager = '/org/freedesktop/systemd1';
const managerIface = 'org.freedesktop.systemd1.Manager';

describe('the dbus plugin schema', () => {
  it('takes well-known names only, and names the path of what it refuses', () => {
    const plugin = createDbusServicesPlugin();
    expect(isWellKnownBusName(hostname1)).toBe(true);
    expect(isWellKnownBusName(':1.42')).toBe(false);
    expect(isWellKnownBusName('hostname')).toBe(false);
    const registry = new PluginRegistry([plugin]);
    let err: unknown;
    try {
      parseStateDocument(
        JSON.stringify({ version: 1, plugins: { dbus: { [hostname1]: { 'not/a/path': {} } } } }),
        { source: 'host.yaml', registry },
      );
    } catch (e) {
      err = e;
    }
    expect(isOpdbusError(err)).toBe(true);
    expect(String((err as Error).message)).toContain('host.yaml');
    expect(String((err as Error).message)).toContain(
      `plugins.dbus["${hostname1}"]["not/a/path"]: invalid key "not/a/path": expected a D-Bus object path`,
    );
    expect(() => createDbusServicesPlugin({ services: [':1.7'] })).toThrow(/not a well-known D-Bus name/);
  });
});

describeIf(probe, 'the dbus plugin against a container', () => {
  let ct: SystemdContainer;
  let stateDir: string;
  beforeAll(async () => {
    ct = await startSystemdContainer();
    stateDir = await mkdtemp(join(tmpdir(), 'opdbus-dbus-services-'));
  }, 600_000);
  afterAll(async () => {
    await ct?.stop();
    if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
  });
  const ctx = (): PluginContext => ({
    target: { busAddress: ct.busAddress },
    netns: undefined,
    logger: silentLogger,
    stateDir,
    signal: undefined,
  });

  it('queries the services it was given, and exactly what a scope names', async () => {
    const plugin = createDbusServicesPlugin({ services: [hostname1] });
    expect(await plugin.probe(ctx())).toMatchObject({ available: true });
    const all = await plugin.query(ctx());
    expect(Object.keys(all)).toEqual([hostname1]);
    expect(all[hostname1]?.[hostnamePath]?.[hostname1]?.StaticHostname).toBe(ct.id);

    const scoped = await plugin.query(ctx(), {
      scope: {
        [hostname1]: { [hostnamePath]: { [hostname1]: { Chassis: 'vm' } } },
        [systemd1]: { [manager]: { [managerIface]: {} } },
      },
    });
    expect(scoped[hostname1]).toEqual({ [hostnamePath]: { [hostname1]: { Chassis: 'container' } } });
    const managerProps = scoped[systemd1]?.[manager]?.[managerIface];
    expect(managerProps?.Version).toEqual(expect.any(String));
    expect(Object.keys(scoped[systemd1]?.[manager] ?? {})).toEqual([managerIface]);
    expect(plugin.schema.safeParse(scoped).success).toBe(true);
  });

  it('diffs named properties; read-only by default, so a difference cannot be applied', async () => {
    const plugin = createDbusServicesPlugin();
    const desired: DbusServicesSection = {
      [hostname1]: { [hostnamePath]: { [hostname1]: { Chassis: 'vm' } } },
    };
    const observed = await plugin.query(ctx(), { scope: desired });
    const specs = plugin.diff(desired, observed);
    expect(specs).toHaveLength(1);
    expect(specs[0]?.resource).toBe(`${hostname1}:${hostnamePath}:${hostname1}.Chassis`);
    expect(specs[0]?.summary).toContain('"container" → "vm"');
    const err = await plugin.apply(makeChange('dbus', specs[0]!), ctx()).catch((e: unknown) => e);
    expect(isOpdbusError(err, 'OPDBUS_ERR_DBUS_READ_ONLY')).toBe(true);
    expect(plugin.diff(observed, observed)).toEqual([]);
  });

  it('names a property or an interface the service does not have', async () => {
    const plugin = createDbusServicesPlugin();
    const err = await plugin
      .query(ctx(), { scope: { [hostname1]: { [hostnamePath]: { [hostname1]: { NoSuchThing: 1 } } } } })
      .catch((e: unknown) => e);
    expect(isOpdbusError(err, 'OPDBUS_ERR_DBUS_UNKNOWN_MEMBER')).toBe(true);
    expect((err as Error).message).toContain('NoSuchThing');
    const noIface = await plugin
      .query(ctx(), { scope: { [hostname1]: { [hostnamePath]: { 'org.example.Nothing': {} } } } })
      .catch((e: unknown) => e);
    expect(isOpdbusError(noIface, 'OPDBUS_ERR_DBUS_UNKNOWN_MEMBER')).toBe(true);
    expect((noIface as Error).message).toContain('has no interface org.example.Nothing');
  });

  it('says which service is missing from the bus', async () => {
    const plugin = createDbusServicesPlugin();
    const err = await plugin.query(ctx(), { scope: { 'org.example.Nothing': {} } }).catch((e: unknown) => e);
    expect(isOpdbusError(err, 'OPDBUS_ERR_PLUGIN_UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toContain('plugins.dbus.org.example.Nothing');
  });

  it('writable: applies readwrite properties as a transaction, verifies, and rolls back', async () => {
    const services = createDbusServicesPlugin({ writable: true });
    const registry = new PluginRegistry([services]);
    const engine = new Engine({ registry, stateDir, target: { busAddress: ct.busAddress } });
    const current = await services.query(ctx(), {
      scope: { [systemd1]: { [manager]: { [managerIface]: { LogLevel: '' } } } },
    });
    const before = current[systemd1]?.[manager]?.[managerIface]?.LogLevel;
    const want = before === 'debug' ? 'notice' : 'debug';
    const doc = parseStateDocument(
      JSON.stringify({
        version: 1,
        plugins: { dbus: { [systemd1]: { [manager]: { [managerIface]: { LogLevel: want } } } } },
      }),
      { source: 'loglevel.json', registry },
    );
    const result = await engine.apply(doc);
    expect(result.status).toBe('committed');
    const level = async (): Promise<string> =>
      (await ct.exec('systemctl', ['log-level'], { check: true })).stdout.trim();
    expect(await level()).toBe(want);
    expect((await engine.plan(doc)).plan.changes).toEqual([]);
    await engine.rollback(result.txId);
    expect(await level()).toBe(before);
  });
});
