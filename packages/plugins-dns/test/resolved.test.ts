// The plugin's settings as resolved itself reports them (resolvectl inside the container), the
// global drop-in, and plan-time errors with the document path.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, PluginRegistry, parseStateDocument } from '@opdbus/core';
import { openNetns } from '@opdbus/netlink';
import { probeSandbox, startSystemdContainer, type SystemdContainer } from '@opdbus/sandbox';
import { describeIf } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DNS_DROP_IN, createDnsPlugin, dnsSchema } from '../src/index.js';
import { dnsContainerPackages } from './container.js';

describeIf(probeSandbox().container, 'dns plugin against systemd-resolved', () => {
  let ct: SystemdContainer;
  let stateDir: string;
  let engine: Engine;
  const registry = new PluginRegistry([createDnsPlugin()]);
  const doc = (yaml: string) =>
    parseStateDocument(`version: 1\nplugins:\n  dns:\n${yaml}`, { source: 'test.yaml', registry });
  const resolvectl = async (...args: string[]): Promise<string> => {
    const r = await ct.exec('resolvectl', args);
    if (r.code !== 0) throw new Error(`resolvectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };

  beforeAll(async () => {
    ct = await startSystemdContainer({ packages: dnsContainerPackages });
    const added = await ct.exec('ip', ['link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'lan1']);
    if (added.code !== 0) throw new Error(added.stderr);
    stateDir = mkdtempSync(join(tmpdir(), 'opdbus-dns-test-'));
    engine = new Engine({
      registry,
      stateDir,
      target: { busAddress: ct.busAddress, root: ct.rootDir, netns: `/proc/${ct.leaderPid}/ns/net` },
      openNetns,
    });
  }, 600_000);
  afterAll(async () => {
    await ct?.stop();
    if (stateDir !== undefined) rmSync(stateDir, { recursive: true, force: true });
  });

  it('sets per-link servers, domains and modes that resolvectl then reports', async () => {
    const result = await engine.apply(
      doc(
        '    links:\n      lan0:\n        dns: [192.0.2.10, "2001:db8::10"]\n        domains: [corp.test, "~."]\n        dnssec: allow-downgrade\n        llmnr: "no"\n',
      ),
    );
    expect(result.status).toBe('committed');
    expect(await resolvectl('dns', 'lan0')).toMatch(/lan0\): 192\.0\.2\.10 2001:db8::10$/);
    expect(await resolvectl('domain', 'lan0')).toMatch(/corp\.test ~\.$/);
    expect(await resolvectl('dnssec', 'lan0')).toMatch(/allow-downgrade$/);
    expect(await resolvectl('llmnr', 'lan0')).toMatch(/no$/);
  });

  it('writes global settings to a drop-in and restarts resolved, which then reports them', async () => {
    const result = await engine.apply(
      doc('    global:\n      dns: [198.51.100.1]\n      domains: [global.test]\n'),
    );
    expect(result.status).toBe('committed');
    expect(readFileSync(join(ct.rootDir, DNS_DROP_IN), 'utf8')).toMatch(/^DNS=198\.51\.100\.1$/m);
    expect(await resolvectl('dns')).toMatch(/^Global: 198\.51\.100\.1$/m);
    // The per-link settings survived the restart.
    expect(await resolvectl('dns', 'lan0')).toMatch(/192\.0\.2\.10/);
  });

  it('refuses an unknown or loopback interface at plan time, naming the path', async () => {
    await expect(engine.plan(doc('    links:\n      nosuch0: { llmnr: "no" }\n'))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_DNS_UNKNOWN_LINK',
      message: expect.stringMatching(/plugins\.dns\.links\.nosuch0: no network interface "nosuch0".*lan0/),
    });
    await expect(engine.plan(doc('    links:\n      lo: { llmnr: "no" }\n'))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_DNS_UNKNOWN_LINK',
    });
  });
});

it('rejects a server that is not an address, with the form to use', () => {
  const r = dnsSchema.safeParse({ links: { eth0: { dns: ['dns.example'] } } });
  expect(r.success).toBe(false);
  expect(r.error?.issues[0]?.message).toMatch(/ADDRESS\[:PORT\]\[#NAME\].*dns\.example is not an IP address/);
});
