import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Engine,
  OpdbusError,
  PluginRegistry,
  StateDir,
  parseStateDocument,
  selfIdentity,
  type AuditRecord,
  type Change,
  type OpdbusEvent,
  type PluginContext,
  type StateDocument,
} from '../src/index.js';
import { memoryHost, memoryPlugin, type MemoryHost, type Section } from './memoryPlugin.js';
// @ts-expect-error -- plain JS fixture shared with a child process
import { filePlugin, readHost, writeHost } from './fixtures/filePlugin.mjs';

let stateDir: string;
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'opdbus-engine-'));
});
afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

function setup(
  initial: Record<string, string>,
  options: {
    spawnWatchdog?: Engine['runWatchdog'] extends never
      ? never
      : (txId: string) => Promise<{ pid: number; startTime: string | null }>;
  } = {},
) {
  const host = memoryHost(initial);
  const registry = new PluginRegistry([memoryPlugin(host)]);
  const events: OpdbusEvent[] = [];
  const engine = new Engine({
    registry,
    stateDir,
    verify: { attempts: 3, initialDelayMs: 1 },
    ...(options.spawnWatchdog ? { spawnWatchdog: options.spawnWatchdog } : {}),
  });
  engine.events.on((e) => events.push(e));
  const doc = (section: Record<string, string | null>): StateDocument =>
    parseStateDocument(JSON.stringify({ version: 1, plugins: { mem: section } }), {
      source: 'test.json',
      registry,
    });
  return { host, engine, events, doc, registry };
}

const snapshot = (host: MemoryHost) => Object.fromEntries([...host.values].sort());

describe('Engine.apply', () => {
  it('checkpoints, journals, applies in order, verifies and commits', async () => {
    const { host, engine, events, doc } = setup({ a: '1', b: '2' });
    host.deps.set('c', ['d']);
    const result = await engine.apply(doc({ a: '10', c: '3', d: '4', b: '2' }));
    expect(result.status).toBe('committed');
    expect(host.log).toEqual(['update a', 'create d', 'create c']);
    expect(snapshot(host)).toEqual({ a: '10', b: '2', c: '3', d: '4' });
    const record = await engine.state.read(result.txId!);
    expect(record).toMatchObject({
      status: 'committed',
      applied: result.plan.changes.map((c) => c.id),
      checkpoints: { mem: { values: { a: '1', c: null, d: null } } },
    });
    expect(record.stateHashAfter).toMatch(/^[0-9a-f]{64}$/);
    expect(record.stateHashAfter).not.toBe(record.stateHashBefore);
    const types = events.map((e) => e.type);
    expect(types.indexOf('tx.checkpoint')).toBeLessThan(types.indexOf('tx.journal'));
    expect(types.indexOf('tx.journal')).toBeLessThan(types.indexOf('change.applying'));
    expect(types.at(-1)).toBe('tx.committed');
    expect((await engine.apply(doc({ a: '10', c: '3' }))).status).toBe('no-changes');
    // The lock is released (the kernel's lock; the file stays).
    expect(await engine.state.lockHolder()).toEqual({ held: false });
  });

  const n = 5;
  for (let k = 1; k <= n; k++) {
    it(`restores the pre-apply state exactly when change ${k} of ${n} fails`, async () => {
      const initial = { k1: 'a', k2: 'b', k3: 'c' };
      const { host, engine, doc } = setup(initial);
      const desired = { k1: 'A', k2: null, k3: 'C', k4: 'D', k5: 'E' };
      host.failOn.add(`k${k}`);
      const err = await engine.apply(doc(desired)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpdbusError);
      expect((err as OpdbusError).code).toBe('OPDBUS_ERR_APPLY_FAILED');
      expect((err as OpdbusError).message).toContain(`Change ${k} of ${n} failed`);
      expect((err as OpdbusError).message).toContain('rolled back');
      expect(host.log).toHaveLength(k - 1);
      expect(snapshot(host)).toEqual(initial);
      const record = await engine.state.read((err as OpdbusError).data?.txId as string);
      expect(record.status).toBe('rolled-back');
      expect(record.failure?.phase).toBe('apply');
      expect(record.restore).toMatchObject({ ok: true, residual: [] });
    });
  }

  it('rolls back when verification finds the host did not take a change', async () => {
    const { host, engine, doc } = setup({ a: '1' });
    host.sticky.add('b');
    const err = (await engine.apply(doc({ a: '2', b: 'x' })).catch((e: unknown) => e)) as OpdbusError;
    expect(err.code).toBe('OPDBUS_ERR_APPLY_FAILED');
    expect(err.message).toContain('did not reach the desired state');
    expect(err.message).toContain('mem:b');
    expect(snapshot(host)).toEqual({ a: '1' });
  });

  it('verifies every resource of the document, also those the plan left alone', async () => {
    // Writing a also changes c, which the document holds and which needed no change of its own.
    const { host, engine, doc } = setup({ a: '1', c: 'x' });
    host.sideEffects.set('a', ['c', 'y']);
    const err = (await engine.apply(doc({ a: '2', c: 'x' })).catch((e: unknown) => e)) as OpdbusError;
    expect(err.code).toBe('OPDBUS_ERR_APPLY_FAILED');
    expect(err.message).toContain('did not reach the desired state: mem:c');
    expect(host.values.get('a')).toBe('1');
  });

  it('reports RESTORE_FAILED, with what, when the restore does not verify', async () => {
    const { host, engine, doc } = setup({ a: '1', b: '2' });
    host.failOn.add('b');
    host.failRestore.add('a');
    const err = (await engine.apply(doc({ a: '9', b: '8' })).catch((e: unknown) => e)) as OpdbusError;
    expect(err.code).toBe('OPDBUS_ERR_RESTORE_FAILED');
    expect(err.message).toContain('did NOT restore');
    expect(err.message).toContain('mem:a');
    const record = await engine.state.read(err.data?.txId as string);
    expect(record.status).toBe('restore-failed');
    // Retry once the cause is gone.
    host.failRestore.clear();
    const again = await engine.rollback(record.txId);
    expect(again.status).toBe('rolled-back');
    expect(snapshot(host)).toEqual({ a: '1', b: '2' });
  });

  it('refuses risky changes unless commit-confirmed or forced', async () => {
    const { host, engine, doc } = setup({ 'risky.eth0': 'up' });
    await expect(engine.apply(doc({ 'risky.eth0': 'down' }))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_RISKY_CHANGE',
      message: expect.stringContaining('--confirm-timeout'),
    });
    expect(host.log).toEqual([]);
    await expect(engine.apply(doc({ 'risky.eth0': 'down' }), { force: true })).resolves.toMatchObject({
      status: 'committed',
    });
  });

  it('stops between changes when aborted and restores', async () => {
    const { host, engine, doc } = setup({});
    const controller = new AbortController();
    engine.events.on((e) => {
      if (e.type === 'change.applied' && e.index === 1) controller.abort();
    });
    const err = (await engine
      .apply(doc({ a: '1', b: '2', c: '3' }), { signal: controller.signal })
      .catch((e: unknown) => e)) as OpdbusError;
    expect(err.code).toBe('OPDBUS_ERR_APPLY_FAILED');
    expect(err.message).toContain('interrupted');
    expect(host.log).toEqual(['create a', 'create b']);
    expect(snapshot(host)).toEqual({});
  });
});

describe('plugins that apply a batch at once (applyBatch)', () => {
  /** The memory plugin with applyBatch: a batch is applied all or nothing, and recorded. */
  function batching(host: MemoryHost, name: string, batches: string[][]) {
    const base = memoryPlugin(host, name);
    return {
      ...base,
      apply: () => Promise.reject(new Error('apply must not be called when applyBatch exists')),
      applyBatch: async (changes: readonly Change[], ctx: PluginContext) => {
        batches.push(changes.map((c) => c.resource));
        const failing = changes.find((c) => host.failOn.has(c.resource));
        if (failing !== undefined)
          throw new OpdbusError('OPDBUS_ERR_TEST_APPLY', `injected failure on ${failing.resource}`, {
            data: { changeId: failing.id },
          });
        for (const change of changes) await base.apply(change, ctx);
      },
    };
  }

  it('applies each run of consecutive changes of such a plugin in one call, in plan order', async () => {
    const batchHost = memoryHost({ a: '1' });
    const plainHost = memoryHost({});
    const batches: string[][] = [];
    // b.mid depends on plain:m, which depends on batch:a: the plan interleaves the plugins.
    batchHost.deps.set('b.mid', []);
    const registry = new PluginRegistry([
      batching(batchHost, 'batch', batches),
      memoryPlugin(plainHost, 'plain'),
    ]);
    const batchPlugin = registry.require('batch');
    const diff = batchPlugin.diff!.bind(batchPlugin);
    batchPlugin.diff = (desired: Section, observed: Section) =>
      diff(desired, observed).map((c) =>
        c.resource === 'b.mid' ? { ...c, dependsOn: [{ plugin: 'plain', resource: 'm' }] } : c,
      );
    const plain = registry.require('plain');
    const plainDiff = plain.diff!.bind(plain);
    plain.diff = (desired: Section, observed: Section) =>
      plainDiff(desired, observed).map((c) => ({ ...c, dependsOn: [{ plugin: 'batch', resource: 'a' }] }));
    const engine = new Engine({ registry, stateDir, verify: { attempts: 2, initialDelayMs: 1 } });
    const events: OpdbusEvent[] = [];
    engine.events.on((e) => events.push(e));
    const doc = parseStateDocument(
      JSON.stringify({ version: 1, plugins: { batch: { a: '2', c: '3', 'b.mid': '4' }, plain: { m: 'x' } } }),
      { source: 'test.json', registry },
    );
    const result = await engine.apply(doc);
    expect(result.status).toBe('committed');
    expect(result.plan.changes.map((c) => `${c.plugin}:${c.resource}`)).toEqual([
      'batch:a',
      'batch:c',
      'plain:m',
      'batch:b.mid',
    ]);
    expect(batches).toEqual([['a', 'c'], ['b.mid']]);
    expect(plainHost.log).toEqual(['create m']);
    // Every change still has its events and journal entries.
    expect(
      events.filter((e) => e.type === 'change.applied').map((e) => (e as { index: number }).index),
    ).toEqual([0, 1, 2, 3]);
    expect((await engine.state.read(result.txId!)).applied).toEqual(result.plan.changes.map((c) => c.id));
  });

  it('a failing batch names the change the plugin says failed, and is rolled back', async () => {
    const host = memoryHost({ a: '1', b: '1' });
    const batches: string[][] = [];
    const registry = new PluginRegistry([batching(host, 'batch', batches)]);
    const engine = new Engine({ registry, stateDir, verify: { attempts: 2, initialDelayMs: 1 } });
    host.failOn.add('b');
    const doc = parseStateDocument(
      JSON.stringify({ version: 1, plugins: { batch: { a: '2', b: '2', c: '2' } } }),
      {
        source: 'test.json',
        registry,
      },
    );
    const err = (await engine.apply(doc).catch((e: unknown) => e)) as OpdbusError;
    expect(err.code).toBe('OPDBUS_ERR_APPLY_FAILED');
    expect(err.message).toMatch(
      /^Change 2 of 3 failed: update b \(plugin batch, resource b\): injected failure on b/,
    );
    expect(err.message).toContain('rolled back');
    expect(batches).toEqual([['a', 'b', 'c']]);
    expect(Object.fromEntries(host.values)).toEqual({ a: '1', b: '1' });
    const [record] = await engine.transactions();
    expect(record).toMatchObject({ status: 'rolled-back', applied: [], failure: { phase: 'apply' } });
  });
});

describe('commit-confirmed', () => {
  // The watchdog normally runs in its own process (see the CLI tests); here a second engine
  // over the same state directory runs the same loop in this process.
  function withWatchdog(initial: Record<string, string>) {
    let watchdog: Promise<unknown> | undefined;
    let wake: (() => void) | undefined;
    const ctx = setup(initial, {
      spawnWatchdog: (txId) => {
        const other = new Engine({
          registry: ctx.registry,
          stateDir,
          verify: { attempts: 3, initialDelayMs: 1 },
        });
        watchdog = other.runWatchdog(txId, { pollMs: 5, onWake: (w) => (wake = w) });
        return Promise.resolve(selfIdentity());
      },
    });
    return { ...ctx, watchdog: () => watchdog!, wake: () => wake?.() };
  }

  it('restores at the deadline unless confirmed', async () => {
    const { host, engine, doc, watchdog } = withWatchdog({ a: '1' });
    const result = await engine.apply(doc({ a: '2' }), { confirmTimeoutS: 0.2 });
    expect(result.status).toBe('pending-confirm');
    expect(snapshot(host)).toEqual({ a: '2' });
    await expect(engine.apply(doc({ a: '3' }))).rejects.toMatchObject({ code: 'OPDBUS_ERR_TX_STATE' });
    const final = (await watchdog()) as { status: string; restore: { reason: string } };
    expect(final.status).toBe('rolled-back');
    expect(final.restore.reason).toContain('not confirmed within 0.2 s');
    expect(snapshot(host)).toEqual({ a: '1' });
  });

  it('keeps the change when confirmed in time', async () => {
    const { host, engine, doc, watchdog, wake } = withWatchdog({ a: '1' });
    const result = await engine.apply(doc({ a: '2' }), { confirmTimeoutS: 30 });
    const confirmed = await engine.confirm();
    expect(confirmed).toMatchObject({ txId: result.txId, status: 'committed' });
    wake();
    expect(await watchdog()).toMatchObject({ status: 'committed' });
    expect(snapshot(host)).toEqual({ a: '2' });
    await expect(engine.confirm(result.txId)).rejects.toMatchObject({ code: 'OPDBUS_ERR_TX_STATE' });
  });

  it('needs a watchdog', async () => {
    const { host, engine, doc } = setup({ a: '1' });
    await expect(engine.apply(doc({ a: '2' }), { confirmTimeoutS: 5 })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_WATCHDOG',
    });
    expect(host.log).toEqual([]);
  });
});

describe('Engine.rollback', () => {
  it('restores the latest transaction on demand, and only once', async () => {
    const { host, engine, doc } = setup({ a: '1' });
    const first = await engine.apply(doc({ a: '2', b: '1' }));
    const record = await engine.rollback();
    expect(record.txId).toBe(first.txId);
    expect(snapshot(host)).toEqual({ a: '1' });
    await expect(engine.rollback(first.txId)).rejects.toMatchObject({ code: 'OPDBUS_ERR_TX_STATE' });
    await expect(engine.rollback('20990101T000000.000Z-abcdef')).rejects.toMatchObject({
      code: 'OPDBUS_ERR_TX_NOT_FOUND',
    });
    await expect(engine.rollback('nonsense')).rejects.toMatchObject({ code: 'OPDBUS_ERR_TX_NOT_FOUND' });
  });

  it('refuses to roll back an older transaction under a later one that touched the same resources', async () => {
    const { host, engine, doc } = setup({ a: '1' });
    const first = await engine.apply(doc({ a: '2' }));
    await engine.apply(doc({ a: '3' }));
    await expect(engine.rollback(first.txId)).rejects.toMatchObject({
      code: 'OPDBUS_ERR_TX_STATE',
      message: expect.stringContaining('--force'),
    });
    await engine.rollback(first.txId, { force: true });
    expect(snapshot(host)).toEqual({ a: '1' });
  });
});

describe('journal retention', () => {
  it('keeps the journals of the most recent transactions only; rollback of a pruned one says why', async () => {
    const { registry, doc } = setup({ a: '0' });
    const engine = new Engine({
      registry,
      stateDir,
      verify: { attempts: 3, initialDelayMs: 1 },
      journalRetention: 3,
    });
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) ids.push((await engine.apply(doc({ a: String(i) }))).txId!);
    expect(await engine.state.ids()).toEqual(ids.slice(2));
    for (const id of ids.slice(0, 2)) {
      expect(existsSync(engine.state.journalPath(id))).toBe(false);
      expect(existsSync(engine.state.progressPath(id))).toBe(false);
    }
    const pruned = await engine.rollback(ids[0]).catch((e: unknown) => e);
    expect(pruned).toMatchObject({
      code: 'OPDBUS_ERR_TX_NOT_FOUND',
      message: expect.stringContaining('pruned'),
    });
    // The latest is still there to roll back.
    expect((await engine.rollback()).txId).toBe(ids[4]);
  });

  it('never prunes a transaction that is not finished, whatever its age', async () => {
    const { engine, doc } = setup({ a: '0' });
    const ids: string[] = [];
    for (let i = 1; i <= 4; i++) ids.push((await engine.apply(doc({ a: String(i) }))).txId!);
    // The oldest as a crash would leave it: mid-apply.
    const oldest = await engine.state.read(ids[0]!);
    await engine.state.write({ ...oldest, status: 'applying' });
    const lock = await engine.state.lock();
    try {
      expect(await engine.state.prune(1)).toEqual(ids.slice(1, 3));
    } finally {
      await lock.release();
    }
    expect(await engine.state.ids()).toEqual([ids[0], ids[3]]);
    await expect(engine.state.prune(0)).rejects.toMatchObject({ code: 'OPDBUS_ERR_USAGE' });
  });
});

describe('crash recovery', () => {
  it('restores a transaction whose process was SIGKILLed mid-apply, on the next invocation', async () => {
    const hostFile = join(stateDir, 'host.json');
    writeHost(hostFile, { a: '1', b: '2' });
    const fixture = new URL('./fixtures/crashApply.mjs', import.meta.url).pathname;
    const docJson = JSON.stringify({ version: 1, plugins: { file: { a: 'A', b: null, c: 'C', d: 'D' } } });
    const child = spawn(process.execPath, [fixture, hostFile, join(stateDir, 'sd'), docJson, 'c'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('HANG')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`fixture exited early with ${code}`)));
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    // Half-applied: a, b and c changed, d not yet; the journal is left behind, and the kernel
    // released the lock with the process (its owner record names the dead process).
    expect(readHost(hostFile)).toEqual({ a: 'A', c: 'C' });
    expect(existsSync(join(stateDir, 'sd', 'lock'))).toBe(true);
    expect(await new StateDir(join(stateDir, 'sd')).lockHolder()).toEqual({ held: false });
    expect(JSON.parse(await readFile(join(stateDir, 'sd', 'lock'), 'utf8'))).toMatchObject({
      pid: child.pid,
    });

    const registry = new PluginRegistry([filePlugin(hostFile)]);
    const audited: AuditRecord[] = [];
    const audit = { record: (r: AuditRecord) => Promise.resolve(void audited.push(r)) };
    const engine = new Engine({ registry, stateDir: join(stateDir, 'sd'), audit });
    const [left] = await engine.transactions();
    expect(left?.status).toBe('applying');
    const progress = await engine.state.readProgress(left!.txId);
    expect(progress.started).toHaveLength(3);
    expect(progress.done).toHaveLength(2);
    const reports = await engine.recover();
    expect(reports).toEqual([
      expect.objectContaining({ txId: left!.txId, found: 'applying', action: 'restored' }),
    ]);
    expect(readHost(hostFile)).toEqual({ a: '1', b: '2' });
    expect((await engine.state.read(left!.txId)).status).toBe('rolled-back');
    expect(await engine.recover()).toEqual([]);
    // The recovery is recorded like any rollback, with what was observed before and after it.
    expect(audited).toEqual([
      expect.objectContaining({
        kind: 'rollback',
        trigger: 'recovery',
        txId: left!.txId,
        status: 'rolled-back',
      }),
    ]);
    expect(audited[0]!.stateHashBefore).not.toBe(audited[0]!.stateHashAfter);
    expect(JSON.parse(await readFile(engine.state.journalPath(left!.txId), 'utf8'))).toMatchObject({
      restore: { reason: expect.stringMatching(/died while the transaction was applying/) },
    });
  });
});
