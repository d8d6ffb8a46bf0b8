// `opdbus codegen dbus` and the D-Bus plugins through the CLI, against a systemd-nspawn container.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeSandbox, startSystemdContainer, type SystemdContainer } from '@opdbus/sandbox';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';
import { describeIf } from '@opdbus/sandbox/testing';

const probe = probeSandbox();
const cliDir = fileURLToPath(new URL('../', import.meta.url));
const interfaces = fileURLToPath(new URL('../../../packages/dbus/interfaces/', import.meta.url));

function typecheck(files: string[]): string {
  const program = ts.createProgram(files, {
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    verbatimModuleSyntax: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts', 'lib.esnext.disposable.d.ts'],
    types: ['node'],
    skipLibCheck: true,
    noEmit: true,
  });
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`)
    .join('\n');
}

describe('opdbus codegen dbus --xml', () => {
  const out = join(cliDir, `test/.generated-${process.pid}`);
  afterAll(() => rm(out, { recursive: true, force: true }));

  it('writes typed modules importing @opdbus/dbus that typecheck', async () => {
    const result = await runCli([
      '--json',
      'codegen',
      'dbus',
      '--dest',
      'org.freedesktop.login1',
      '--xml',
      `${interfaces}login1-manager.xml`,
      `${interfaces}login1-session.xml`,
      '--out',
      out,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const body = JSON.parse(result.stdout) as { interfaces: string[]; files: string[] };
    expect(body.interfaces).toEqual(['org.freedesktop.login1.Manager', 'org.freedesktop.login1.Session']);
    const manager = await readFile(join(out, 'login1Manager.ts'), 'utf8');
    expect(manager).toContain("from '@opdbus/dbus'");
    expect(manager).toContain(
      'async listSessions(): Promise<Array<[string, number, string, string, string]>>',
    );
    expect(manager).toContain(
      "static readonly defaultDestination: string | undefined = 'org.freedesktop.login1'",
    );
    expect(typecheck(body.files)).toBe('');
  });

  it('exits 3 without --dest or --xml, and names a missing interface', async () => {
    const none = await runCli(['codegen', 'dbus', '--out', '/tmp/x']);
    expect(none.code).toBe(3);
    const missing = await runCli([
      'codegen',
      'dbus',
      '--xml',
      `${interfaces}hostname1.xml`,
      '--interface',
      'org.example.Nope',
      '--out',
      '/tmp/x',
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('has no interface org.example.Nope');
  });
});

describeIf(probe.container, 'opdbus against systemd in a container (--bus, --root)', () => {
  let ct: SystemdContainer;
  let dir: string;
  beforeAll(async () => {
    ct = await startSystemdContainer();
    dir = await mkdtemp(join(tmpdir(), 'opdbus-cli-dbus-'));
  }, 600_000);
  afterAll(async () => {
    await ct?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const cli = (...args: string[]) =>
    runCli(['--bus', ct.busAddress, '--root', ct.rootDir, '--state-dir', join(dir, 'state'), ...args]);

  it('generates bindings from the live systemd', async () => {
    const out = join(dir, 'gen');
    const result = await runCli([
      'codegen',
      'dbus',
      '--bus',
      ct.busAddress,
      '--dest',
      'org.freedesktop.systemd1',
      '--path',
      '/org/freedesktop/systemd1',
      '--out',
      out,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('systemd1Manager.ts');
    expect(await readFile(join(out, 'systemd1Manager.ts'), 'utf8')).toContain(
      'async startUnit(name: string, mode: string): Promise<string>',
    );
  });

  it('applies a unit and a timer, queries them, and rolls back', async () => {
    const file = join(dir, 'host.yaml');
    await writeFile(
      file,
      [
        'version: 1',
        'plugins:',
        '  systemd:',
        '    units:',
        '      opdbus-cli.service:',
        '        content: |',
        '          [Service]',
        '          ExecStart=/bin/sleep infinity',
        '          [Install]',
        '          WantedBy=multi-user.target',
        '        enabled: true',
        '        active: true',
        '        properties: { CPUWeight: 250, MemoryMax: 128M }',
        '    timers:',
        '      opdbus-cli-report:',
        '        onCalendar: "*-*-* 03:00:00"',
        '        command: /bin/true',
        '  hostname:',
        '    pretty: op-dbus CLI test',
        '',
      ].join('\n'),
    );
    expect((await cli('diff', file)).code).toBe(2);
    const applied = await cli('apply', file);
    expect(applied.code, applied.stderr).toBe(0);
    expect((await ct.exec('systemctl', ['is-active', 'opdbus-cli.service'])).stdout.trim()).toBe('active');
    expect((await ct.exec('systemctl', ['is-enabled', 'opdbus-cli-report.timer'])).stdout.trim()).toBe(
      'enabled',
    );
    expect(
      (
        await ct.exec('systemctl', ['show', '-p', 'CPUWeight', '--value', 'opdbus-cli.service'], {
          check: true,
        })
      ).stdout.trim(),
    ).toBe('250');
    expect((await cli('diff', file)).code).toBe(0);
    const queried = await cli('--json', 'query', '--plugin', 'systemd');
    const doc = JSON.parse(queried.stdout) as {
      plugins: { systemd: { units: Record<string, unknown>; timers: Record<string, unknown> } };
    };
    expect(doc.plugins.systemd.units['opdbus-cli.service']).toEqual({ active: true, enabled: true });
    expect(doc.plugins.systemd.timers['opdbus-cli-report']).toMatchObject({
      onCalendar: '*-*-* 03:00:00',
      command: '/bin/true',
    });
    expect((await cli('rollback')).code).toBe(0);
    expect((await ct.exec('systemctl', ['is-active', 'opdbus-cli.service'])).stdout.trim()).not.toBe(
      'active',
    );
    expect((await ct.exec('test', ['-e', '/etc/systemd/system/opdbus-cli-report.timer'])).code).not.toBe(0);
  });

  it('queries any service with --dbus-service, diffs a dbus section, and refuses to write it', async () => {
    const hostname1 = 'org.freedesktop.hostname1';
    const path = '/org/freedesktop/hostname1';
    const queried = await cli('--json', 'query', '--plugin', 'dbus', '--dbus-service', hostname1);
    expect(queried.code, queried.stderr).toBe(0);
    const body = JSON.parse(queried.stdout) as {
      plugins: { dbus: Record<string, Record<string, Record<string, Record<string, unknown>>>> };
    };
    expect(Object.keys(body.plugins)).toEqual(['dbus']);
    const props = body.plugins.dbus[hostname1]?.[path]?.[hostname1];
    expect(props?.StaticHostname).toBe(ct.id);

    // The query, written back as a document, diffs clean.
    const same = join(dir, 'dbus-same.json');
    await writeFile(same, queried.stdout);
    const clean = await cli('diff', same);
    expect(clean.code, clean.stdout + clean.stderr).toBe(0);

    const file = join(dir, 'dbus.yaml');
    await writeFile(
      file,
      [
        'version: 1',
        'plugins:',
        '  dbus:',
        `    ${hostname1}:`,
        `      ${path}:`,
        `        ${hostname1}:`,
        '          Chassis: vm',
        '',
      ].join('\n'),
    );
    const diff = await cli('diff', file);
    expect(diff.code).toBe(2);
    expect(diff.stdout).toContain('Chassis');
    const applied = await cli('apply', file);
    expect(applied.code).toBe(5);
    expect(applied.stderr).toContain('read-only');
    expect((await ct.exec('hostnamectl', ['chassis'], { check: true })).stdout.trim()).toBe('container');

    const bad = await cli('query', '--dbus-service', ':1.5');
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('not a well-known D-Bus name');
  });

  it('refuses to write unit files without the matching --root (exit 4)', async () => {
    const file = join(dir, 'unit.yaml');
    await writeFile(
      file,
      'version: 1\nplugins:\n  systemd:\n    units:\n      x.service:\n        content: "[Service]\\nExecStart=/bin/true\\n"\n',
    );
    const result = await runCli(['--bus', ct.busAddress, '--state-dir', join(dir, 'state2'), 'diff', file]);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('is not the root of the systemd');
    expect(result.stderr).toContain('--root');
  });
});
