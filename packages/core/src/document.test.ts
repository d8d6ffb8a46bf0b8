import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadStateDocument, parseStateDocument, stringifyStateDocument } from './document.js';
import { OpdbusError } from './errors.js';
import { limits } from './limits.js';
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

describe('hostile documents', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opdbus-hostile-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const bomb = [
    'version: 1',
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
    'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
    'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
    'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
    'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
    'plugins: { sysctl: { x: 1 } }',
    '',
  ].join('\n');

  it('reports a YAML alias bomb as a parse error of the file, not an internal error', () => {
    const err = parseError(bomb, 'bomb.yaml');
    expect(err.code).toBe('OPDBUS_ERR_STATE_PARSE');
    expect(err.message).toMatch(
      /^bomb\.yaml is not a valid state document:\n {2}bomb\.yaml: \(syntax\): its aliases expand/,
    );
    expect(err.message).not.toMatch(/ReferenceError|at /);
  });

  it('reports 100 000-deep JSON as too deep, before parsing it', () => {
    const deep = `{"version":1,"plugins":{"sysctl":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`;
    const err = parseError(deep, 'deep.json');
    expect(err.code).toBe('OPDBUS_ERR_STATE_PARSE');
    expect(err.message).toContain(
      `too deep: mappings and lists nest more than ${limits.documentDepth} levels`,
    );
    expect(err.message).toContain('deep.json:1');
  });

  it('reports deep block nesting as too deep, naming where', () => {
    let text = 'version: 1\nplugins:\n  network:\n';
    for (let i = 0; i < 80; i++) text += `${' '.repeat(4 + i)}k${i}:\n`;
    text += `${' '.repeat(84)}leaf: 1\n`;
    const err = parseError(text, 'block.yaml');
    expect(err.code).toBe('OPDBUS_ERR_STATE_PARSE');
    expect(err.message).toMatch(/block\.yaml:\d+:\d+: plugins\.network\.k0/);
    expect(err.message).toContain('too deep');
  });

  it('accepts the nesting a real document has (brackets inside strings do not count)', () => {
    const doc = parseStateDocument(
      `version: 1\nplugins:\n  sysctl:\n    kernel.core_pattern: "${'['.repeat(200)}"\n`,
      { source: 'ok.yaml', registry },
    );
    expect(doc.plugins.sysctl).toEqual({ 'kernel.core_pattern': '['.repeat(200) });
  });

  it('refuses a document over the size limit before parsing, from a file or a string', async () => {
    const text = `version: 1\nplugins:\n  sysctl:\n    a: "${'x'.repeat(limits.documentBytes)}"\n`;
    const err = parseError(text, 'big.yaml');
    expect(err).toMatchObject({
      code: 'OPDBUS_ERR_LIMIT_EXCEEDED',
      data: { file: 'big.yaml', limit: 'documentBytes' },
    });
    expect(err.message.length).toBeLessThan(400);
    const file = join(dir, 'big.yaml');
    await writeFile(file, text);
    await expect(loadStateDocument(file, registry)).rejects.toMatchObject({
      code: 'OPDBUS_ERR_LIMIT_EXCEEDED',
      data: { file, limit: 'documentBytes' },
    });
  });

  it('reads a pipe or a file without a size whole, and stops an endless one at the limit', async () => {
    // `opdbus apply <(…)` hands a FIFO, whose size is 0: it is read to its end.
    const fifo = join(dir, 'doc.fifo');
    execFileSync('mkfifo', [fifo]);
    const body = `version: 1\nplugins:\n  sysctl:\n${Array.from({ length: 5000 }, (_, i) => `    k${i}: "${i}"\n`).join('')}`;
    const writer = createWriteStream(fifo);
    writer.end(body);
    const doc = await loadStateDocument(fifo, registry);
    expect(Object.keys(doc.plugins.sysctl as object)).toHaveLength(5000);
    await expect(loadStateDocument('/dev/zero', registry)).rejects.toMatchObject({
      code: 'OPDBUS_ERR_LIMIT_EXCEEDED',
      data: { file: '/dev/zero', limit: 'documentBytes' },
    });
  });

  it('refuses a document with more items than the limit before parsing', () => {
    const text = `version: 1\nplugins:\n  x: [${'0,'.repeat(limits.documentItems)}0]\n`;
    const err = parseError(text, 'many.yaml');
    expect(err).toMatchObject({ code: 'OPDBUS_ERR_LIMIT_EXCEEDED', data: { limit: 'documentItems' } });
  });

  it('refuses a value or a key over its limit, naming the path, without echoing it', () => {
    const value = 'v'.repeat(limits.valueBytes + 1);
    const err = parseError(`version: 1\nplugins:\n  sysctl:\n    kernel.x: ${value}\n`, 'v.yaml');
    expect(err).toMatchObject({
      code: 'OPDBUS_ERR_LIMIT_EXCEEDED',
      data: { path: 'plugins.sysctl["kernel.x"]', limit: 'valueBytes' },
    });
    expect(err.message).toMatch(/^v\.yaml:4:\d+: plugins\.sysctl\["kernel\.x"\]: a value of \d+ bytes/);
    expect(err.message.length).toBeLessThan(300);
    const key = 'k'.repeat(limits.keyBytes + 1);
    const keyErr = parseError(JSON.stringify({ version: 1, plugins: { sysctl: { [key]: 1 } } }), 'k.yaml');
    expect(keyErr).toMatchObject({ code: 'OPDBUS_ERR_LIMIT_EXCEEDED', data: { limit: 'keyBytes' } });
    expect(keyErr.message.length).toBeLessThan(500);
    expect(keyErr.message).toMatch(/bytes, sha256 [0-9a-f]{12}\)/);
  });

  it('quotes long unknown names cut, with their size and hash', () => {
    const name = `x${'y'.repeat(999)}`;
    const err = parseError(JSON.stringify({ version: 1, plugins: { [name]: {} } }), 'u.yaml');
    expect(err.code).toBe('OPDBUS_ERR_UNKNOWN_PLUGIN');
    expect(err.message.length).toBeLessThan(800);
    expect(err.message).toContain('1000 bytes, sha256');
  });

  it('reports at most 20 problems in the message', () => {
    const links = Array.from({ length: 500 }, (_, i) => `      - { name: l${i}, kind: nope }`).join('\n');
    const err = parseError(`version: 1\nplugins:\n  network:\n    links:\n${links}\n`, 'n.yaml');
    expect(err.code).toBe('OPDBUS_ERR_STATE_INVALID');
    expect(err.message.split('\n')).toHaveLength(22);
    expect(err.message).toContain('… and 480 more problems');
  });
});
