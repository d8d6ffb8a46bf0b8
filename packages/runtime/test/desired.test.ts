import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpdbusError, PluginRegistry } from '@opdbus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DOCUMENTS, desiredSections, loadBuiltinPlugins, loadDesired } from '../src/index.js';

describe('loadDesired: a document file or a directory of them merged', () => {
  let dir: string;
  let registry: PluginRegistry;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opdbus-desired-'));
    registry = new PluginRegistry(await loadBuiltinPlugins(['network', 'sysctl']));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function folder(name: string, files: Record<string, string>): Promise<string> {
    const path = join(dir, name);
    await mkdir(path);
    for (const [file, text] of Object.entries(files)) await writeFile(join(path, file), text);
    return path;
  }

  it('merges in name order: mappings key by key, lists concatenated; hidden and other files are not read', async () => {
    const path = await folder('merge', {
      '20-more.yaml':
        'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_forward: "1"\n  network:\n    links:\n      - { name: br1, kind: bridge }\n',
      '10-base.json': JSON.stringify({
        version: 1,
        plugins: {
          sysctl: { 'net.ipv4.conf.all.rp_filter': '2' },
          network: { links: [{ name: 'br0', kind: 'bridge' }] },
        },
      }),
      '.hidden.yaml': 'not: [valid',
      'README.txt': 'not a document',
    });
    expect((await desiredSections(path)).sort()).toEqual(['network', 'sysctl']);
    const doc = await loadDesired(path, registry);
    expect(doc.source).toBe(path);
    expect(doc.plugins.sysctl).toEqual({ 'net.ipv4.conf.all.rp_filter': '2', 'net.ipv4.ip_forward': '1' });
    const links = (doc.plugins.network as { links: { name: string }[] }).links.map((l) => l.name);
    expect(links).toEqual(['br0', 'br1']);
  });

  it('refuses a value two documents set differently, naming both files and the path', async () => {
    const path = await folder('conflict', {
      'a.yaml': 'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_forward: "1"\n',
      'b.yaml': 'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_forward: "0"\n',
    });
    const err = await loadDesired(path, registry).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpdbusError);
    expect((err as OpdbusError).code).toBe('OPDBUS_ERR_STATE_INVALID');
    expect((err as OpdbusError).message).toContain(join(path, 'b.yaml'));
    expect((err as OpdbusError).message).toContain(join(path, 'a.yaml'));
    expect((err as OpdbusError).message).toContain('net.ipv4.ip_forward');
  });

  it('validates each file on its own first, so the error names the file and the path in it', async () => {
    const path = await folder('invalid', {
      'a.yaml': 'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_forward: "1"\n',
      'b.yaml': 'version: 1\nplugins:\n  network:\n    links:\n      - { name: br0, kind: nosuchkind }\n',
    });
    const err = await loadDesired(path, registry).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpdbusError);
    expect((err as OpdbusError).message).toContain(join(path, 'b.yaml'));
    expect((err as OpdbusError).message).toMatch(/links/);
  });

  it('refuses duplicates the merge creates through the plugin schema (two links of one name)', async () => {
    const path = await folder('duplicate', {
      'a.yaml': 'version: 1\nplugins:\n  network:\n    links:\n      - { name: br0, kind: bridge }\n',
      'b.yaml': 'version: 1\nplugins:\n  network:\n    links:\n      - { name: br0, kind: bridge }\n',
    });
    await expect(loadDesired(path, registry)).rejects.toThrow(/br0/);
  });

  it('names the path it cannot read, and refuses a directory of more than MAX_DOCUMENTS files', async () => {
    await expect(loadDesired(join(dir, 'nothing-here'), registry)).rejects.toThrow(
      /nothing-here: cannot read the desired state \(ENOENT\)/,
    );
    const files: Record<string, string> = {};
    for (let i = 0; i <= MAX_DOCUMENTS; i++)
      files[`${String(i).padStart(4, '0')}.yaml`] = 'version: 1\nplugins: {}\n';
    const path = await folder('many', files);
    const err = await loadDesired(path, registry).catch((e: unknown) => e);
    expect((err as OpdbusError).code).toBe('OPDBUS_ERR_LIMIT_EXCEEDED');
  });
});
