import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpdbusError, parseStateDocument } from '@opdbus/core';
import { verifyLedger } from '@opdbus/ledger';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { describeIf, requirement } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinPlugins } from '../src/plugins.js';
import {
  createEngine,
  exitCodeFor,
  loadBuiltinPlugins,
  builtinPluginNames,
  ledgerPaths,
  recoverFirst,
  reportError,
  type Output,
} from '../src/index.js';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');

function capture(): Output & { text: () => string } {
  const lines: string[] = [];
  return {
    out: (t) => lines.push(`out:${t}`),
    err: (t) => lines.push(`err:${t}`),
    text: () => lines.join('\n'),
  };
}

describe('runtime without a host', () => {
  it('registers every built-in plugin once, in planning order', () => {
    const names = builtinPlugins().map((p) => p.name);
    expect(new Set(names).size).toBe(names.length);
    // Routes may go through a WireGuard interface created in the same plan; machines' veths into
    // bridges of network and ovs: the registration order is the plan's order.
    expect(names.indexOf('wireguard')).toBeLessThan(names.indexOf('network'));
    expect(names.indexOf('ovs')).toBeLessThan(names.indexOf('containers'));
  });

  it('loads the same plugins lazily, all or only those named, in the same order', async () => {
    const all = builtinPlugins().map((p) => p.name);
    expect(builtinPluginNames).toEqual(all);
    expect((await loadBuiltinPlugins()).map((p) => p.name)).toEqual(all);
    expect((await loadBuiltinPlugins(['network', 'sysctl', 'nope'])).map((p) => p.name)).toEqual([
      'sysctl',
      'network',
    ]);
  });

  it('reports an OpdbusError with its code and exit code, anything else as internal', () => {
    const out = capture();
    const err = new OpdbusError('OPDBUS_ERR_LOCKED', 'held by pid 1');
    expect(reportError(err, false, out, 'opdbusd')).toBe(exitCodeFor('OPDBUS_ERR_LOCKED'));
    expect(out.text()).toBe('err:opdbusd: held by pid 1\n(OPDBUS_ERR_LOCKED)');
    const json = capture();
    expect(reportError(new Error('boom'), true, json)).toBe(1);
    expect(JSON.parse(json.text().slice(4))).toMatchObject({
      ok: false,
      error: { code: 'OPDBUS_ERR_INTERNAL' },
    });
  });
});

describeIf(asRoot, 'createEngine in a network namespace', () => {
  let netns: SandboxNetns;
  let dir: string;
  const sysctlIn = (key: string): string =>
    execFileSync('ip', ['netns', 'exec', netns.name, 'sysctl', '-n', key], { encoding: 'utf8' }).trim();

  beforeAll(async () => {
    netns = await createNetns();
    dir = await mkdtemp(join(tmpdir(), 'opdbus-runtime-test-'));
  });
  afterAll(async () => {
    await netns?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('takes a state snapshot at a committed apply unless told not to', async () => {
    const doc = (engine: ReturnType<typeof createEngine>, ttl: number) =>
      parseStateDocument(`version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_default_ttl: ${ttl}\n`, {
        source: 'inline',
        registry: engine.registry,
      });
    const withSnapshots = join(dir, 'snap-on');
    const on = createEngine(
      { stateDir: withSnapshots, logLevel: 'warn', netns: netns.name },
      { plugins: builtinPlugins() },
    );
    expect((await on.apply(doc(on, 71))).status).toBe('committed');
    expect(existsSync(ledgerPaths(withSnapshots).snapshotsDir)).toBe(true);
    const without = join(dir, 'snap-off');
    const off = createEngine(
      { stateDir: without, logLevel: 'warn', netns: netns.name },
      { plugins: builtinPlugins(), snapshots: false },
    );
    expect((await off.apply(doc(off, 72))).status).toBe('committed');
    expect(existsSync(ledgerPaths(without).snapshotsDir)).toBe(false);
    expect((await verifyLedger(ledgerPaths(without).ledgerDir)).ok).toBe(true);
  });

  it('an unconfirmed apply is restored by the detached watchdog process and recorded in the ledger', async () => {
    const stateDir = join(dir, 'watchdog');
    const engine = createEngine(
      { stateDir, logLevel: 'warn', netns: netns.name },
      { plugins: builtinPlugins() },
    );
    const doc = parseStateDocument('version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_default_ttl: 91\n', {
      source: 'inline',
      registry: engine.registry,
    });
    const before = sysctlIn('net.ipv4.ip_default_ttl');
    const applied = await engine.apply(doc, { confirmTimeoutS: 1 });
    expect(applied.status).toBe('pending-confirm');
    const txId = applied.txId ?? '';
    expect(sysctlIn('net.ipv4.ip_default_ttl')).toBe('91');
    // Nobody confirms: the watchdog (another process) restores the value.
    let status = '';
    for (let i = 0; i < 200 && status !== 'rolled-back'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await engine.state.read(txId)).status;
    }
    expect(status).toBe('rolled-back');
    expect(sysctlIn('net.ipv4.ip_default_ttl')).toBe(before);
    // The watchdog logs its last line after it has recorded the rollback: wait for it.
    let log = '';
    for (let i = 0; i < 100 && !log.includes('watchdog finished'); i++) {
      log = await readFile(engine.state.watchdogLogPath(txId), 'utf8');
      if (!log.includes('watchdog finished')) await new Promise((r) => setTimeout(r, 100));
    }
    expect(log).toContain('"name":"opdbus-watchdog"');
    expect(log).toContain('watchdog finished');
    // Both the apply and the watchdog's restore are in a ledger that verifies.
    const report = await verifyLedger(ledgerPaths(stateDir).ledgerDir);
    expect(report.ok).toBe(true);
    expect(report.size).toBeGreaterThanOrEqual(2);
    expect(await recoverFirst(engine, () => undefined)).toEqual([]);
  });

  it('recoverFirst does nothing before the state directory exists', async () => {
    const stateDir = join(dir, 'fresh');
    const engine = createEngine(
      { stateDir, logLevel: 'silent', netns: netns.name },
      { plugins: await loadBuiltinPlugins(['sysctl']) },
    );
    const said: string[] = [];
    expect(await recoverFirst(engine, (l) => said.push(l))).toEqual([]);
    expect(said).toEqual([]);
    expect(existsSync(stateDir)).toBe(false);
  });
});
