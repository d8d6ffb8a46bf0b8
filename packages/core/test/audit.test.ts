import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Engine,
  PluginRegistry,
  hashJson,
  parseStateDocument,
  selfIdentity,
  type AuditRecord,
  type AuditSink,
  type OpdbusEvent,
  type StateDocument,
} from '../src/index.js';
import { memoryHost, memoryPlugin } from './memoryPlugin.js';

let stateDir: string;
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'opdbus-audit-'));
});
afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

/** An audit sink that keeps records in memory; it completes each record a few ticks later (as a durable write would), and can be told to fail. */
class MemorySink implements AuditSink {
  readonly records: (AuditRecord & { durable: boolean })[] = [];
  failOn: AuditRecord['kind'] | undefined;
  async record(record: AuditRecord): Promise<void> {
    if (record.kind === this.failOn) throw new Error('disk full');
    const stored = { ...record, durable: false };
    this.records.push(stored);
    await tick();
    await tick();
    stored.durable = true;
  }
}

function setup(initial: Record<string, string>) {
  const host = memoryHost(initial);
  const registry = new PluginRegistry([memoryPlugin(host)]);
  const sink = new MemorySink();
  const events: OpdbusEvent[] = [];
  let watchdog: Promise<unknown> | undefined;
  const engine = new Engine({
    registry,
    stateDir,
    audit: sink,
    verify: { attempts: 2, initialDelayMs: 1 },
    spawnWatchdog: (txId) => {
      const other = new Engine({
        registry,
        stateDir,
        audit: sink,
        actor: { kind: 'watchdog', name: 'watchdog', uid: 0, pid: process.pid },
        verify: { attempts: 2, initialDelayMs: 1 },
      });
      watchdog = other.runWatchdog(txId, { pollMs: 5 });
      return Promise.resolve(selfIdentity());
    },
  });
  engine.events.on((e) => events.push(e));
  const doc = (section: Record<string, string | null>): StateDocument =>
    parseStateDocument(JSON.stringify({ version: 1, plugins: { mem: section } }), {
      source: 'test.json',
      registry,
    });
  return { host, engine, sink, events, doc, watchdog: () => watchdog };
}

describe('audit sink', () => {
  it('records the plan and the apply result, with actor, process and state hashes, durably before apply returns', async () => {
    const { engine, sink, doc } = setup({ a: '1', b: '2' });
    const result = await engine.apply(doc({ a: '10', b: '2' }));
    expect(sink.records.map((r) => [r.kind, r.status])).toEqual([
      ['plan', 'planned'],
      ['apply', 'committed'],
    ]);
    expect(sink.records.every((r) => r.durable)).toBe(true);
    const [plan, applied] = sink.records as unknown as [AuditRecord, AuditRecord];
    expect(plan).toMatchObject({
      planHash: result.plan.hash,
      changes: 1,
      plugins: ['mem'],
      stateHashBefore: hashJson({ mem: { a: '1', b: '2' } }),
      desiredHash: hashJson({ mem: { a: '10', b: '2' } }),
      actor: { kind: 'user', uid: process.getuid?.() ?? -1, pid: process.pid },
      process: { pid: process.pid },
    });
    expect(plan.process.command.length).toBeGreaterThan(0);
    expect(applied).toMatchObject({
      txId: result.txId,
      stateHashBefore: plan.stateHashBefore,
      stateHashAfter: hashJson({ mem: { a: '10', b: '2' } }),
    });
    await engine.apply(doc({ a: '10' }));
    expect(sink.records.at(-1)).toMatchObject({ kind: 'plan', status: 'no-changes', changes: 0 });
  });

  it('records a failed apply: the rollback and the apply result', async () => {
    const { host, engine, sink, doc } = setup({ a: '1' });
    host.failOn.add('b');
    await expect(engine.apply(doc({ a: '2', b: '3' }))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_APPLY_FAILED',
    });
    expect(sink.records.map((r) => [r.kind, r.status, r.trigger])).toEqual([
      ['plan', 'planned', undefined],
      ['rollback', 'rolled-back', 'apply-failed'],
      ['apply', 'rolled-back', undefined],
    ]);
    const rollback = sink.records[1]!;
    expect(rollback.stateHashBefore).toBe(hashJson({ mem: { a: '2', b: null } }));
    expect(rollback.stateHashAfter).toBe(hashJson({ mem: { a: '1', b: null } }));
    expect(sink.records[2]!.error?.message).toContain('Change 2 of 2 failed');
  });

  it('records rollbacks on demand, confirms and watchdog restores', async () => {
    const { engine, sink, doc, watchdog } = setup({ a: '1' });
    await engine.apply(doc({ a: '2' }));
    await engine.rollback();
    expect(sink.records.at(-1)).toMatchObject({
      kind: 'rollback',
      trigger: 'requested',
      status: 'rolled-back',
    });

    const pending = await engine.apply(doc({ a: '3' }), { confirmTimeoutS: 30 });
    expect(sink.records.at(-1)).toMatchObject({
      kind: 'apply',
      status: 'pending-confirm',
      txId: pending.txId,
    });
    await engine.confirm();
    expect(sink.records.at(-1)).toMatchObject({ kind: 'confirm', status: 'committed', txId: pending.txId });
    await watchdog();

    const unconfirmed = await engine.apply(doc({ a: '4' }), { confirmTimeoutS: 0.05 });
    await watchdog();
    expect(sink.records.at(-1)).toMatchObject({
      kind: 'rollback',
      trigger: 'watchdog',
      txId: unconfirmed.txId,
      actor: { kind: 'watchdog' },
    });
  });

  it('a plan that cannot be recorded is not applied', async () => {
    const { host, engine, sink, doc } = setup({ a: '1' });
    sink.failOn = 'plan';
    await expect(engine.apply(doc({ a: '2' }))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_AUDIT_FAILED',
      message: expect.stringMatching(/nothing was changed/),
    });
    expect(host.values.get('a')).toBe('1');
    expect(await engine.transactions()).toEqual([]);
  });

  it('a commit that cannot be recorded is reported; a restore that cannot be recorded still restores', async () => {
    const { host, engine, sink, events, doc } = setup({ a: '1' });
    sink.failOn = 'apply';
    await expect(engine.apply(doc({ a: '2' }))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_AUDIT_FAILED',
      message: expect.stringMatching(/is committed on the host but is missing from the audit log/),
    });
    expect(host.values.get('a')).toBe('2');
    sink.failOn = 'rollback';
    const record = await engine.rollback();
    expect(record.status).toBe('rolled-back');
    expect(host.values.get('a')).toBe('1');
    expect(events).toContainEqual(expect.objectContaining({ type: 'audit.failed', kind: 'rollback' }));
  });
});
