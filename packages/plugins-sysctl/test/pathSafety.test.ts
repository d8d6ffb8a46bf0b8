// A sysctl key names a file of /proc/sys of the target namespace and nothing else: traversal in
// any spelling is refused by the schema (naming the key) and, should a caller skip the schema, by
// the kernel (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) before a byte is read or written.
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Engine,
  PluginRegistry,
  isOpdbusError,
  makeChange,
  parseStateDocument,
  type PluginContext,
} from '@opdbus/core';
import { openNetns } from '@opdbus/netlink';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { describeIf, requirement } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_VALUE_BYTES, createSysctlPlugin } from '../src/index.js';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');
const plugin = createSysctlPlugin();
const registry = new PluginRegistry([plugin]);

let dir: string;
let victim: string;
const secret = `SECRET-${process.pid}-${Math.random().toString(16).slice(2)}`;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'opdbus-sysctl-paths-'));
  victim = join(dir, 'victim');
  await writeFile(victim, secret);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every spelling of "walk out of /proc/sys to FILE" found in the audit. */
function traversals(file: string): string[] {
  const up = '../../../..';
  return [
    `net/${up}${file}`,
    `kernel/${up}${file}`,
    `net.ipv4/${up}/..${file}`,
    `net.//.//.//.//.${file.slice(1).replaceAll('/', '.')}`,
    `net.ipv4.conf.//.//.//.//.//.${file.slice(1).replaceAll('/', '.')}`,
    `/proc/sys/../..${file}`,
    `.${file}`,
    `net..${file}`,
  ];
}

describe('sysctl keys that leave /proc/sys are refused at validation', () => {
  it('names each key and never reads the file', () => {
    for (const key of traversals(victim)) {
      let err: unknown;
      try {
        parseStateDocument(JSON.stringify({ version: 1, plugins: { sysctl: { [key]: 'PWNED' } } }), {
          source: 'evil.yaml',
          registry,
        });
      } catch (e) {
        err = e;
      }
      expect(isOpdbusError(err, 'OPDBUS_ERR_STATE_INVALID'), key).toBe(true);
      const message = (err as Error).message;
      expect(message).toContain(`evil.yaml:1:`);
      expect(message).toContain(JSON.stringify(key));
      expect(message).toMatch(/a sysctl key such as net\.ipv4\.ip_forward \(/);
      expect(message).not.toContain(secret);
    }
  });

  it('refuses a value larger than a page, naming the key', () => {
    const text = JSON.stringify({
      version: 1,
      plugins: { sysctl: { 'kernel.core_pattern': 'x'.repeat(MAX_VALUE_BYTES + 1) } },
    });
    expect(() => parseStateDocument(text, { source: 'big.yaml', registry })).toThrow(
      /plugins\.sysctl\["kernel\.core_pattern"\]: a sysctl value fits one page: at most 4095 bytes, this one has 4096/,
    );
  });
});

describe('a sysctl root that holds a link out of it', () => {
  it('is never followed: reading and writing through it are refused', async () => {
    const root = join(dir, 'proc-sys');
    await mkdir(join(root, 'net', 'ipv4'), { recursive: true });
    await writeFile(join(root, 'net', 'ipv4', 'ip_forward'), '0\n');
    await symlink(victim, join(root, 'net', 'ipv4', 'evil'));
    const fake = createSysctlPlugin({ root });
    const ctx: PluginContext = {
      target: {},
      netns: undefined,
      logger: new Engine({ registry, stateDir: dir }).logger,
      stateDir: dir,
      signal: undefined,
    };
    expect(await fake.query(ctx, { scope: { 'net.ipv4.ip_forward': 1 } })).toEqual({
      'net.ipv4.ip_forward': '0',
    });
    await expect(fake.query(ctx, { scope: { 'net.ipv4.evil': 1 } })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_PATH_UNSAFE',
    });
    const write = makeChange('sysctl', {
      resource: 'net.ipv4.evil',
      op: 'update',
      before: null,
      after: 'PWNED',
    });
    await expect(fake.apply(write, ctx)).rejects.toMatchObject({ code: 'OPDBUS_ERR_PATH_UNSAFE' });
    await expect(fake.checkpoint(ctx, [write])).rejects.toMatchObject({ code: 'OPDBUS_ERR_PATH_UNSAFE' });
    expect(await readFile(victim, 'utf8')).toBe(secret);
  });
});

describeIf(asRoot, 'sysctl keys that leave /proc/sys, past the schema (root)', () => {
  let netns: SandboxNetns;
  beforeAll(async () => {
    netns = await createNetns();
  });
  afterAll(async () => {
    await netns?.destroy();
  });

  for (const where of ['host', 'netns'] as const) {
    it(`are refused by the kernel before any read or write (${where})`, async () => {
      const runner = where === 'netns' ? openNetns(netns.name) : undefined;
      const ctx: PluginContext = {
        target: where === 'netns' ? { netns: netns.name } : {},
        netns: runner,
        logger: new Engine({ registry, stateDir: dir }).logger,
        stateDir: dir,
        signal: undefined,
      };
      try {
        for (const key of traversals(victim)) {
          const keyInNet = key.startsWith('net') ? key : `net/${key}`;
          const change = makeChange('sysctl', {
            resource: keyInNet,
            op: 'update',
            before: null,
            after: 'PWNED',
          });
          for (const attempt of [
            () => plugin.query(ctx, { scope: { [keyInNet]: 'x' } }),
            () => plugin.checkpoint(ctx, [change]),
            () => plugin.apply(change, ctx),
          ]) {
            let err: unknown;
            try {
              await attempt();
            } catch (e) {
              err = e;
            }
            expect(err, `${where} ${keyInNet}`).toBeDefined();
            expect(String((err as Error).message)).not.toContain(secret);
            expect([
              'OPDBUS_ERR_PATH_UNSAFE',
              'OPDBUS_ERR_SYSCTL_NOT_NAMESPACED',
              'OPDBUS_ERR_SYSCTL_UNKNOWN_KEY',
            ]).toContain((err as { code?: string }).code);
          }
          expect(await readFile(victim, 'utf8')).toBe(secret);
        }
      } finally {
        (runner as { close?: () => void } | undefined)?.close?.();
      }
    });
  }
});
