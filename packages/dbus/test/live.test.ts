// @opdbus/dbus against real services: systemd, hostnamed, timedated and logind inside a
// systemd-nspawn container, and a private dbus-daemon.
import { mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isOpdbusError } from '@opdbus/core';
import { probeSandbox, startDbusDaemon, startSystemdContainer, type SystemdContainer } from '@opdbus/sandbox';
import ts from 'typescript';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  Hostname1,
  Systemd1Manager,
  Systemd1Unit,
  Variant,
  connectBus,
  describeService,
  escapePathElement,
  generateBindings,
  walkObjectTree,
  writeBindings,
  type DbusConnection,
} from '../src/index.js';
import { describeIf } from '@opdbus/sandbox/testing';

const probe = probeSandbox();
const packageDir = fileURLToPath(new URL('../', import.meta.url));

/** Typecheck files with the repository's strict settings; returns the diagnostics as text. */
function typecheck(files: string[]): string {
  const program = ts.createProgram(files, {
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    noImplicitOverride: true,
    verbatimModuleSyntax: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts', 'lib.esnext.disposable.d.ts'],
    types: ['node'],
    customConditions: ['@opdbus/source'],
    skipLibCheck: true,
    noEmit: true,
  });
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`)
    .join('\n');
}

describeIf(probe.dbus, 'a private dbus-daemon', () => {
  it('connects, lists names, and keeps the D-Bus error name', async () => {
    await using daemon = await startDbusDaemon();
    await using bus = await connectBus({ address: daemon.address });
    expect(bus.uniqueName).toMatch(/^:\d+\.\d+$/);
    expect(await bus.listNames()).toContain('org.freedesktop.DBus');
    const err = await bus
      .getProperty('org.example.Nobody', '/', 'org.example.I', 'P')
      .catch((e: unknown) => e);
    expect(isOpdbusError(err, 'OPDBUS_ERR_DBUS_CALL')).toBe(true);
    expect((err as { data: { dbusError: string } }).data.dbusError).toBe(
      'org.freedesktop.DBus.Error.ServiceUnknown',
    );
  });

  it('fails to connect with the address and the reason', async () => {
    const err = await connectBus({ address: 'unix:path=/nonexistent/opdbus.sock' }).catch((e: unknown) => e);
    expect(isOpdbusError(err, 'OPDBUS_ERR_DBUS_CONNECT')).toBe(true);
    expect((err as Error).message).toContain('/nonexistent/opdbus.sock');
  });

  it('fails pending and later calls once closed', async () => {
    await using daemon = await startDbusDaemon();
    const bus = await connectBus({ address: daemon.address });
    await bus.close();
    expect(bus.closed).toBe(true);
    await expect(bus.listNames()).rejects.toMatchObject({ code: 'OPDBUS_ERR_DBUS_CLOSED' });
  });
});

describeIf(probe.container, 'systemd, hostnamed, timedated, logind in a container', () => {
  let ct: SystemdContainer;
  let bus: DbusConnection;
  const genDir = `${packageDir}test/.generated-${process.pid}`;
  beforeAll(async () => {
    ct = await startSystemdContainer();
    bus = await connectBus({ address: ct.busAddress });
  }, 600_000);
  afterAll(async () => {
    await bus?.close();
    await ct?.stop();
    rmSync(genDir, { recursive: true, force: true });
  });

  it('calls through the shipped typed proxies; errors keep their D-Bus name', async () => {
    const manager = new Systemd1Manager(bus);
    expect(await manager.get('Version')).toMatch(/^\d+/);
    const units = await manager.listUnits();
    expect(units.length).toBeGreaterThan(20);
    expect(units.some((u) => u[0] === 'dbus.service' && u[3] === 'active')).toBe(true);
    const path = await manager.getUnit('dbus.service');
    expect(path).toBe(`/org/freedesktop/systemd1/unit/${escapePathElement('dbus.service')}`);
    const unit = new Systemd1Unit(bus, { path });
    expect(await unit.get('ActiveState')).toBe('active');
    expect(typeof (await unit.get('ActiveEnterTimestamp'))).toBe('bigint');
    const err = await manager.getUnit('no-such-unit.service').catch((e: unknown) => e);
    expect(isOpdbusError(err, 'OPDBUS_ERR_DBUS_CALL')).toBe(true);
    expect((err as { data: { dbusError: string } }).data.dbusError).toBe(
      'org.freedesktop.systemd1.NoSuchUnit',
    );
    // Arguments are checked against the signature before anything is sent.
    await expect(manager.startUnit('x.service', 5 as unknown as string)).rejects.toMatchObject({
      code: 'OPDBUS_ERR_DBUS_ARGS',
    });
  });

  it('receives signals through match rules (JobRemoved after StartUnit)', async () => {
    const manager = new Systemd1Manager(bus);
    await manager.subscribe();
    const removed: Array<[string, string, string]> = [];
    let done!: () => void;
    const seen = new Promise<void>((resolve) => (done = resolve));
    let job = '';
    const subscription = await manager.onJobRemoved((_id, path, unit, result) => {
      removed.push([path, unit, result]);
      if (path === job) done();
    });
    try {
      job = await manager.startUnit('systemd-tmpfiles-clean.service', 'replace');
      await seen;
      expect(removed.find((r) => r[0] === job)).toEqual([job, 'systemd-tmpfiles-clean.service', 'done']);
    } finally {
      await subscription.unsubscribe();
    }
  });

  it('keeps a property cache current with PropertiesChanged (hostnamed)', async () => {
    const hostname = new Hostname1(bus);
    await using cache = await hostname.cacheProperties();
    const before = cache.get('PrettyHostname');
    let notify!: () => void;
    const changed = new Promise<void>((resolve) => (notify = resolve));
    cache.onChange((c) => {
      if (c.PrettyHostname === 'Opdbus Cache Test') notify();
    });
    await hostname.setPrettyHostname('Opdbus Cache Test', false);
    await changed;
    expect(cache.get('PrettyHostname')).toBe('Opdbus Cache Test');
    expect(before).not.toBe('Opdbus Cache Test');
  });

  it('writes a property with Set, passing a Variant where the signature says v', async () => {
    const manager = new Systemd1Manager(bus);
    const level = await manager.get('LogLevel');
    await manager.set('LogLevel', 'debug');
    expect(await manager.get('LogLevel')).toBe('debug');
    await manager.set('LogLevel', level);
    // SetUnitProperties takes a(sv): Variants pass through to the wire.
    await manager.setUnitProperties('dbus.service', true, [['CPUWeight', new Variant('t', 150n)]]);
    expect(
      await bus.getProperty(
        'org.freedesktop.systemd1',
        await manager.getUnit('dbus.service'),
        'org.freedesktop.systemd1.Service',
        'CPUWeight',
      ),
    ).toBe(150n);
  });

  it('walks an object tree (logind)', async () => {
    const objects = await walkObjectTree(bus, 'org.freedesktop.login1');
    expect(objects.map((o) => o.path)).toContain('/org/freedesktop/login1');
    expect(objects.map((o) => o.path)).toContain('/org/freedesktop/login1/seat/seat0');
    expect(
      objects.find((o) => o.path === '/org/freedesktop/login1')!.interfaces.map((i) => i.name),
    ).toContain('org.freedesktop.login1.Manager');
  });

  it('generates bindings from live introspection that typecheck, and a call through them works', async () => {
    mkdirSync(genDir, { recursive: true });
    const services = [
      {
        destination: 'org.freedesktop.systemd1',
        paths: ['/org/freedesktop/systemd1', '/org/freedesktop/systemd1/unit/dbus_2eservice'],
      },
      { destination: 'org.freedesktop.hostname1', paths: ['/org/freedesktop/hostname1'] },
      { destination: 'org.freedesktop.timedate1', paths: ['/org/freedesktop/timedate1'] },
      { destination: 'org.freedesktop.login1', paths: undefined },
    ];
    const written: string[] = [];
    for (const s of services) {
      const description = await describeService(
        bus,
        s.destination,
        s.paths === undefined ? {} : { paths: s.paths },
      );
      const files = generateBindings(description, { importFrom: '../../../src/index.js' });
      written.push(...(await writeBindings(files, `${genDir}/${s.destination.split('.')[2]}`)));
    }
    expect(written.some((f) => f.endsWith('systemd1Manager.ts'))).toBe(true);
    expect(written.some((f) => f.endsWith('login1Seat.ts'))).toBe(true);
    expect(typecheck(written)).toBe('');
    const generated = (await import(`${genDir}/timedate1/timedate1.ts`)) as {
      Timedate1: new (b: DbusConnection) => {
        get(name: string): Promise<unknown>;
        listTimezones(): Promise<string[]>;
      };
    };
    const timedate = new generated.Timedate1(bus);
    expect(await timedate.get('Timezone')).toBeTypeOf('string');
    expect(await timedate.listTimezones()).toContain('Europe/Berlin');
  });
});
