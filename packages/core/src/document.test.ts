import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadStateDocument, parseStateDocument, stringifyStateDocument } from './document.js';
import { OpdbusError } from './errors.js';
import { definePlugin } from './plugin.js';
import { PluginRegistry } from './registry.js';

const linkSchema = z.strictObject({
  name: z.string(),
  kind: z.enum(['bridge', 'veth']),
  mtu: z.number().int().min(68).optional(),
});
const netSchema = z.strictObject({ links: z.array(linkSchema).optional() });
const netPlugin = definePlugin<z.output<typeof netSchema>, null>({
  name: 'network',
  version: '1.0.0',
  description: 'test network',
  schema: netSchema,
  probe: () => Promise.resolve({ available: true }),
  query: () => Promise.resolve({}),
  diff: () => [],
  apply: () => Promise.resolve(),
  checkpoint: () => Promise.resolve(null),
  restore: () => Promise.resolve(),
});
const kvPlugin = definePlugin<Record<string, string | number>, null>({
  name: 'sysctl',
  version: '1.0.0',
  description: 'test kv',
  schema: z.record(
    z.string().regex(/^[a-z0-9_.-]+$/, 'a sysctl key such as net.ipv4.ip_forward'),
    z.union([z.string(), z.number()]),
  ),
  probe: () => Promise.resolve({ available: true }),
  query: () => Promise.resolve({}),
  diff: () => [],
  apply: () => Promise.resolve(),
  checkpoint: () => Promise.resolve(null),
  restore: () => Promise.resolve(),
});
const registry = new PluginRegistry([netPlugin, kvPlugin]);

function parseError(text: string, source = 'host.yaml'): OpdbusError {
  try {
    parseStateDocument(text, { source, registry });
  } catch (err) {
    if (err instanceof OpdbusError) return err;
    throw err;
  }
  throw new Error('expected an error');
}

describe('parseStateDocument', () => {
  it('accepts a valid YAML document; sections come in plugin registration order', () => {
    const doc = parseStateDocument(
      'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_forward: 1\n  network:\n    links:\n      - { name: br0, kind: bridge }\n',
      { source: 'a.yaml', registry },
    );
    expect(Object.keys(doc.plugins)).toEqual(['network', 'sysctl']);
    expect(doc.plugins.sysctl).toEqual({ 'net.ipv4.ip_forward': 1 });
  });

  it('accepts JSON', () => {
    const doc = parseStateDocument(
      '{"version":1,"plugins":{"network":{"links":[{"name":"br0","kind":"bridge"}]}}}',
      { source: 'a.json', registry },
    );
    expect(doc.plugins.network).toEqual({ links: [{ name: 'br0', kind: 'bridge' }] });
  });

  it('names file, line, column and path of an unknown field', () => {
    const err = parseError(
      'version: 1\nplugins:\n  network:\n    links:\n      - name: br0\n        kind: bridge\n        mtuu: 9000\n',
    );
    expect(err.code).toBe('OPDBUS_ERR_STATE_INVALID');
    expect(err.message).toContain('host.yaml:7:9: plugins.network.links[0].mtuu: unknown field "mtuu"');
    expect(err.data?.issues).toEqual([
      expect.objectContaining({ path: 'plugins.network.links[0].mtuu', line: 7 }),
    ]);
  });

  it('names the path and the expectation of a wrong type, and reports every problem', () => {
    const err = parseError(
      'version: 1\nplugins:\n  network:\n    links:\n      - { name: br0, kind: bond }\n      - { name: 7, kind: veth, mtu: 10 }\n',
    );
    expect(err.code).toBe('OPDBUS_ERR_STATE_INVALID');
    expect(err.message).toMatch(/host\.yaml:5:\d+: plugins\.network\.links\[0\]\.kind: .*"bridge"\|"veth"/);
    expect(err.message).toMatch(/host\.yaml:6:\d+: plugins\.network\.links\[1\]\.name: .*expected string/);
    expect(err.message).toMatch(/plugins\.network\.links\[1\]\.mtu: .*>=68/);
  });

  it('quotes keys with dots in paths', () => {
    const err = parseError('version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_forward: true\n');
    expect(err.message).toContain('plugins.sysctl["net.ipv4.ip_forward"]');
    expect(err.message).toContain('host.yaml:4:');
  });

  it('names a key its record refuses, and what the key should be', () => {
    const err = parseError('version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_forward: 1\n    Net IPv4: 1\n');
    expect(err.code).toBe('OPDBUS_ERR_STATE_INVALID');
    expect(err.message).toContain(
      'host.yaml:5:5: plugins.sysctl["Net IPv4"]: invalid key "Net IPv4": expected a sysctl key such as net.ipv4.ip_forward',
    );
  });

  it('refuses an unknown plugin, naming the registered ones', () => {
    const err = parseError('version: 1\nplugins:\n  netwrk: {}\n');
    expect(err.code).toBe('OPDBUS_ERR_UNKNOWN_PLUGIN');
    expect(err.message).toContain(
      'host.yaml:3:3: plugins.netwrk: unknown plugin "netwrk"; registered plugins: network, sysctl',
    );
  });

  it('refuses unknown top-level fields', () => {
    const err = parseError('version: 1\nplugins: {}\nextra: 1\n');
    expect(err.code).toBe('OPDBUS_ERR_STATE_INVALID');
    expect(err.message).toContain('host.yaml:3:1: extra: unknown field "extra"');
  });

  it('requires version 1', () => {
    expect(parseError('plugins: {}\n').code).toBe('OPDBUS_ERR_STATE_VERSION');
    const err = parseError('version: 2\nplugins: {}\n');
    expect(err.code).toBe('OPDBUS_ERR_STATE_VERSION');
    expect(err.message).toContain('host.yaml:1:10: version: expected 1, got 2');
  });

  it('reports YAML syntax errors with line and column', () => {
    const err = parseError('version: 1\nplugins:\n  sysctl: {a: 1\n');
    expect(err.code).toBe('OPDBUS_ERR_STATE_PARSE');
    expect(err.message).toMatch(/host\.yaml:\d+:\d+: \(syntax\)/);
  });

  it('refuses duplicate keys', () => {
    expect(parseError('version: 1\nversion: 1\nplugins: {}\n').code).toBe('OPDBUS_ERR_STATE_PARSE');
  });

  it('refuses a document that is not a mapping', () => {
    expect(parseError('- 1\n').code).toBe('OPDBUS_ERR_STATE_INVALID');
  });
});

describe('loadStateDocument', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opdbus-doc-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names the file that cannot be read', async () => {
    await expect(loadStateDocument(join(dir, 'missing.yaml'), registry)).rejects.toMatchObject({
      code: 'OPDBUS_ERR_STATE_READ',
      message: expect.stringContaining('missing.yaml'),
    });
  });

  it('round-trips through stringifyStateDocument', async () => {
    const file = join(dir, 'rt.yaml');
    await writeFile(
      file,
      stringifyStateDocument({
        sysctl: { 'net.ipv4.ip_forward': '1' },
        network: { links: [{ name: 'br0', kind: 'bridge' }] },
      }),
    );
    const doc = await loadStateDocument(file, registry);
    expect(doc.plugins).toEqual({
      sysctl: { 'net.ipv4.ip_forward': '1' },
      network: { links: [{ name: 'br0', kind: 'bridge' }] },
    });
    expect(doc.source).toBe(file);
  });
});
