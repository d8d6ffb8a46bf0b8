import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Engine,
  OpdbusError,
  PluginRegistry,
  parseStateDocument,
  type PluginContext,
  type WatchEvent,
} from '@opdbus/core';
import { openNetns } from '@opdbus/netlink';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSysctlPlugin } from '../src/plugin.js';
import { describeIf, requirement } from '@opdbus/sandbox/testing';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');
let name: string;
let netns: SandboxNetns;
let stateDir: string;
const plugin = createSysctlPlugin({
  watchIntervalMs: 50,
  watchKeys: ['net.ipv4.ip_forward', 'net.core.somaxconn'],
});
const hostValue = (key: string): Promise<string> => readFile(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8');
const nsSysctl = (...args: string[]): string =>
  execFileSync('ip', ['netns', 'exec', name, 'sysctl', ...args], { encoding: 'utf8' });

function ctx(): PluginContext {
  return {
    target: { netns: name },
    netns,
    logger: new Engine({ registry: new PluginRegistry(), stateDir }).logger,
    stateDir,
    signal: undefined,
  };
}

describeIf(asRoot, 'sysctl plugin in a network namespace', () => {
  let hostForward: string;
  beforeAll(async () => {
    hostForward = await hostValue('net.ipv4.ip_forward');
    netns = await createNetns();
    name = netns.name;
    stateDir = await mkdtemp(join(tmpdir(), 'opdbus-sysctl-'));
  });
  afterAll(async () => {
    await netns?.destroy();
    await rm(stateDir, { recursive: true, force: true });
    // The host was never touched.
    expect(await hostValue('net.ipv4.ip_forward')).toBe(hostForward);
  });

  const engine = (): Engine =>
    new Engine({
      registry: new PluginRegistry([plugin]),
      stateDir,
      target: { netns: name },
      openNetns,
      verify: { attempts: 3, initialDelayMs: 5 },
    });
  const doc = (section: Record<string, string | number>) =>
    parseStateDocument(JSON.stringify({ version: 1, plugins: { sysctl: section } }), {
      source: 'test.yaml',
      registry: new PluginRegistry([plugin]),
    });

  it('queries only net.* keys in a namespace, and reads what sysctl(8) reads', async () => {
    const all = await plugin.query(ctx());
    const keys = Object.keys(all);
    expect(keys.length).toBeGreaterThan(100);
    expect(keys.every((k) => k.startsWith('net.'))).toBe(true);
    expect(keys).toEqual([...keys].sort());
    // Cross-check with procps' sysctl inside the same namespace (test-only use of the tool).
    for (const key of [
      'net.ipv4.ip_forward',
      'net.ipv4.tcp_rmem',
      'net.core.somaxconn',
      'net.ipv4.ip_local_port_range',
    ]) {
      expect(all[key]).toBe(nsSysctl('-n', key).replace(/\n$/, ''));
    }
    // Write-only keys (actions) are not state.
    expect(keys).not.toContain('net.ipv4.route.flush');
  });

  it('leaves out what a document cannot set (read-only by mode, volatile) unless asked for all', async () => {
    // The kernel's own view of which files nobody may write, inside the same namespace.
    const readOnly = execFileSync(
      'ip',
      ['netns', 'exec', name, 'find', '/proc/sys/net', '-type', 'f', '-perm', '-u+r', '!', '-perm', '-u+w'],
      { encoding: 'utf8' },
    )
      .split('\n')
      .filter((line) => line !== '')
      .map((path) => path.slice('/proc/sys/'.length).replaceAll('/', '.'));
    expect(readOnly.length).toBeGreaterThan(0);
    const settable = Object.keys(await plugin.query(ctx()));
    const everything = Object.keys(await plugin.query(ctx(), { all: true }));
    for (const key of readOnly) {
      expect(settable).not.toContain(key);
      expect(everything).toContain(key);
    }
    expect(everything.length).toBe(settable.length + readOnly.length);
    expect(settable).toContain('net.ipv4.ip_forward');
    // Fed back as a document, the default query plans no change.
    const e = engine();
    const plan = await e.plan(doc(await plugin.query(ctx())));
    expect(plan.plan.changes).toEqual([]);
  });

  it('writes first what makes the kernel rewrite other keys, and holds the keys it rewrote', async () => {
    // Writing net.ipv4.ip_forward sets conf.all.accept_redirects to its opposite and every
    // conf.*.forwarding to its value (inet_forward_change); conf.default.X is copied to interfaces.
    nsSysctl('-w', 'net.ipv4.ip_forward=1');
    nsSysctl('-w', 'net.ipv4.conf.all.accept_redirects=0');
    nsSysctl('-w', 'net.ipv4.conf.lo.forwarding=1');
    const e = engine();
    // accept_redirects and lo.forwarding need no change of their own, but the ip_forward write resets them.
    const desired = {
      'net.ipv4.conf.lo.forwarding': 1,
      'net.ipv4.conf.all.accept_redirects': 0,
      'net.ipv4.ip_forward': 0,
    };
    const plan = await e.plan(doc(desired));
    expect(plan.plan.changes.map((c) => c.resource)).toEqual([
      'net.ipv4.ip_forward',
      'net.ipv4.conf.lo.forwarding',
      'net.ipv4.conf.all.accept_redirects',
    ]);
    expect(plan.plan.changes[2]!.summary).toContain('writing net.ipv4.ip_forward resets it');
    const result = await e.apply(doc(desired));
    expect(result.status).toBe('committed');
    expect(nsSysctl('-n', 'net.ipv4.ip_forward')).toBe('0\n');
    expect(nsSysctl('-n', 'net.ipv4.conf.all.accept_redirects')).toBe('0\n');
    expect(nsSysctl('-n', 'net.ipv4.conf.lo.forwarding')).toBe('1\n');
    expect((await e.plan(doc(desired))).plan.changes).toEqual([]);
    // Rolled back, all three are as they were.
    await e.rollback(result.txId);
    expect(nsSysctl('-n', 'net.ipv4.ip_forward')).toBe('1\n');
    expect(nsSysctl('-n', 'net.ipv4.conf.all.accept_redirects')).toBe('0\n');
    expect(nsSysctl('-n', 'net.ipv4.conf.lo.forwarding')).toBe('1\n');
    nsSysctl('-w', 'net.ipv4.ip_forward=0');
  });

  it('plans keys that reset each other (ip_forward, conf.all.forwarding) without a cycle', async () => {
    nsSysctl('-w', 'net.ipv4.ip_forward=1');
    const e = engine();
    const desired = {
      'net.ipv4.conf.all.forwarding': 0,
      'net.ipv4.ip_forward': 0,
      'net.ipv4.conf.default.forwarding': 0,
      'net.ipv4.conf.all.accept_redirects': 1,
    };
    const result = await e.apply(doc(desired));
    expect(result.status).toBe('committed');
    expect(nsSysctl('-n', 'net.ipv4.ip_forward', 'net.ipv4.conf.default.forwarding')).toBe('0\n0\n');
    expect((await e.plan(doc(desired))).plan.changes).toEqual([]);
  });

  it('fails verify and restores when a write undoes a document key the plugin does not know is coupled', async () => {
    // The engine checks every key of the document after the writes, not only the planned ones: a
    // key the document holds (and the plan left alone) is changed by another writer as soon as
    // ip_forward is written; the transaction does not commit a host that is not as documented.
    nsSysctl('-w', 'net.ipv4.ip_forward=1');
    nsSysctl('-w', 'net.core.somaxconn=4096');
    const e = engine();
    const stop = new AbortController();
    const off = e.events.on((event) => {
      if (event.type === 'change.applied' && !stop.signal.aborted) {
        stop.abort();
        nsSysctl('-w', 'net.core.somaxconn=777');
      }
    });
    try {
      await expect(
        e.apply(doc({ 'net.core.somaxconn': 4096, 'net.ipv4.ip_forward': 0 })),
      ).rejects.toMatchObject({
        code: 'OPDBUS_ERR_APPLY_FAILED',
        message: expect.stringMatching(/did not reach the desired state: sysctl:net\.core\.somaxconn/),
      });
    } finally {
      off();
    }
    expect(nsSysctl('-n', 'net.ipv4.ip_forward')).toBe('1\n');
    nsSysctl('-w', 'net.ipv4.ip_forward=0');
  });

  it('refuses a read-only key at plan time, naming it', async () => {
    // net.core.rmem_max belongs to the host: a child namespace sees it read-only (0444).
    const e = engine();
    await expect(e.plan(doc({ 'net.core.rmem_max': 212992 }))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_SYSCTL_READ_ONLY',
      message: expect.stringContaining('plugins.sysctl["net.core.rmem_max"]'),
    });
  });

  it('refuses unknown, host-wide and write-only keys with the document path', async () => {
    await expect(plugin.query(ctx(), { scope: { 'net.ipv4.no_such_key': 1 } })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_SYSCTL_UNKNOWN_KEY',
      message: expect.stringContaining('plugins.sysctl["net.ipv4.no_such_key"]'),
    });
    await expect(plugin.query(ctx(), { scope: { 'kernel.hostname': 'x' } })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_SYSCTL_NOT_NAMESPACED',
    });
    await expect(plugin.query(ctx(), { scope: { 'net.ipv4.route.flush': 1 } })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_SYSCTL_WRITE_ONLY',
    });
    await expect(plugin.query(ctx(), { scope: { 'net.ipv4': 1 } })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_SYSCTL_UNKNOWN_KEY',
      message: expect.stringContaining('directory'),
    });
  });

  it('diffs with sysctl normalisation: numbers, whitespace between fields, slashed keys', async () => {
    const rmem = nsSysctl('-n', 'net.ipv4.tcp_rmem').trim().split(/\s+/).join('  ');
    const desired = {
      'net.ipv4.tcp_rmem': rmem,
      'net/core/somaxconn': Number(nsSysctl('-n', 'net.core.somaxconn')),
    };
    const observed = await plugin.query(ctx(), { scope: desired });
    expect(Object.keys(observed)).toEqual(['net.ipv4.tcp_rmem', 'net.core.somaxconn']);
    expect(plugin.diff(desired, observed)).toEqual([]);
    expect(plugin.diff({ 'net.core.somaxconn': 77 }, observed)).toEqual([
      expect.objectContaining({ resource: 'net.core.somaxconn', op: 'update', after: '77' }),
    ]);
  });

  it('applies through the engine, verifies, and the namespace (not the host) changes', async () => {
    const e = engine();
    const result = await e.apply(
      doc({ 'net.ipv4.ip_forward': 1, 'net.ipv4.tcp_rmem': '4096 87380 1048576', 'net.core.somaxconn': 511 }),
    );
    expect(result.status).toBe('committed');
    expect(nsSysctl('-n', 'net.ipv4.ip_forward', 'net.ipv4.tcp_rmem', 'net.core.somaxconn')).toBe(
      '1\n4096\t87380\t1048576\n511\n',
    );
    expect(
      (await e.plan(doc({ 'net.ipv4.ip_forward': '1', 'net.core.somaxconn': 511 }))).plan.changes,
    ).toEqual([]);
    // Rollback on demand puts the namespace back.
    await e.rollback(result.txId);
    expect(nsSysctl('-n', 'net.ipv4.ip_forward')).toBe('0\n');
  });

  it('clears a list value with an empty string (written as a newline)', async () => {
    await engine().apply(doc({ 'net.ipv4.ip_local_reserved_ports': '1000-1002' }));
    expect(nsSysctl('-n', 'net.ipv4.ip_local_reserved_ports')).toBe('1000-1002\n');
    const result = await engine().apply(doc({ 'net.ipv4.ip_local_reserved_ports': '' }));
    expect(result.status).toBe('committed');
    expect(nsSysctl('-n', 'net.ipv4.ip_local_reserved_ports')).toBe('\n');
  });

  // A real kernel refusal (EINVAL for a non-number) at step k of n: the namespace ends exactly as it began.
  const keys = [
    'net.ipv4.ip_default_ttl',
    'net.core.somaxconn',
    'net.ipv4.tcp_syn_retries',
    'net.ipv4.tcp_fin_timeout',
  ];
  const good = [77, 1234, 4, 33];
  for (let k = 1; k <= keys.length; k++) {
    it(`restores every key when the kernel refuses change ${k} of ${keys.length}`, async () => {
      const before = nsSysctl('-n', ...keys);
      const section = Object.fromEntries(
        keys.map((key, i) => [key, i === k - 1 ? 'not-a-number' : good[i]!]),
      );
      const err = (await engine()
        .apply(doc(section))
        .catch((e: unknown) => e)) as OpdbusError;
      expect(err).toBeInstanceOf(OpdbusError);
      expect(err.code).toBe('OPDBUS_ERR_APPLY_FAILED');
      expect(err.message).toContain(`Change ${k} of ${keys.length} failed`);
      expect(err.message).toContain('EINVAL');
      expect(err.data).toMatchObject({
        causeCode: 'OPDBUS_ERR_SYSCTL_WRITE',
        causeData: { errno: 'EINVAL', errnoNumber: 22 },
      });
      expect(nsSysctl('-n', ...keys)).toBe(before);
    });
  }

  it('checkpoints and restores directly', async () => {
    const before = nsSysctl('-n', 'net.core.somaxconn');
    const change = plugin.diff(
      { 'net.core.somaxconn': 999 },
      await plugin.query(ctx(), { scope: { 'net.core.somaxconn': 999 } }),
    );
    const { makeChange } = await import('@opdbus/core');
    const full = makeChange('sysctl', change[0]!);
    const token = await plugin.checkpoint(ctx(), [full]);
    await plugin.apply(full, ctx());
    expect(nsSysctl('-n', 'net.core.somaxconn')).toBe('999\n');
    await plugin.restore(token, ctx());
    expect(nsSysctl('-n', 'net.core.somaxconn')).toBe(before);
  });

  it('watch (polling) reports an out-of-band change', async () => {
    const events: WatchEvent[] = [];
    let seen: (() => void) | undefined;
    const arrived = new Promise<void>((resolve) => (seen = resolve));
    const unsubscribe = await plugin.watch!(ctx(), (event) => {
      events.push(event);
      seen?.();
    });
    try {
      const current = nsSysctl('-n', 'net.ipv4.ip_forward').trim();
      nsSysctl('-w', `net.ipv4.ip_forward=${current === '1' ? 0 : 1}`);
      await arrived;
      expect(events[0]).toMatchObject({
        plugin: 'sysctl',
        resource: 'net.ipv4.ip_forward',
        detail: expect.stringContaining('polling'),
      });
    } finally {
      await unsubscribe();
    }
  });
});
