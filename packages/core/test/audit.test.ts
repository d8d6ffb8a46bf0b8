import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Engine,
  PluginRegistry,
  REDACTED,
  auditChanges,
  canonicalJson,
  hashJson,
  limits,
  makeChange,
  parseStateDocument,
  selfIdentity,
  type Plugin,
  type AuditRecord,
  type AuditSink,
  type OpdbusEvent,
  type StateDocument,
} from '../src/index.js';
import { memoryHost, memoryPlugin, type Section } from './memoryPlugin.js';

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

  it('records a failed apply: the apply result, then the rollback it caused, each change with before/after', async () => {
    const { host, engine, sink, doc } = setup({ a: '1' });
    host.failOn.add('b');
    await expect(engine.apply(doc({ a: '2', b: '3' }))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_APPLY_FAILED',
    });
    expect(sink.records.map((r) => [r.kind, r.status, r.trigger])).toEqual([
      ['plan', 'planned', undefined],
      ['apply', 'rolled-back', undefined],
      ['rollback', 'rolled-back', 'apply-failed'],
    ]);
    const [plan, applied, rollback] = sink.records as unknown as [AuditRecord, AuditRecord, AuditRecord];
    expect(plan.changeRecords).toEqual([
      expect.objectContaining({
        plugin: 'mem',
        resource: 'a',
        op: 'update',
        before: '1',
        after: '2',
        risk: null,
      }),
      expect.objectContaining({ plugin: 'mem', resource: 'b', op: 'create', before: null, after: '3' }),
    ]);
    expect(plan.changeRecords?.[0]).not.toHaveProperty('applied');
    expect(applied.changeRecords?.map((c) => [c.resource, c.applied])).toEqual([
      ['a', true],
      ['b', true],
    ]);
    expect(applied.failedChange).toBe(applied.changeRecords?.[1]?.id);
    expect(applied.error?.message).toContain('Change 2 of 2 failed');
    // The rollback lists what it undid, inverted, last change first.
    expect(rollback.changeRecords?.map((c) => [c.resource, c.op, c.before, c.after, c.applied])).toEqual([
      ['b', 'delete', '3', null, true],
      ['a', 'update', '2', '1', true],
    ]);
    expect(rollback.stateHashBefore).toBe(hashJson({ mem: { a: '2', b: null } }));
    expect(rollback.stateHashAfter).toBe(hashJson({ mem: { a: '1', b: null } }));
    expect(sink.records.every((r) => typeof r.host === 'string' && r.host.length > 0)).toBe(true);
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

  it('a result that cannot be recorded is not kept: the transaction is rolled back', async () => {
    const { host, engine, sink, doc } = setup({ a: '1' });
    sink.failOn = 'apply';
    await expect(engine.apply(doc({ a: '2' }))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_AUDIT_FAILED',
      message: expect.stringMatching(/rolled back and the host is as it was before/),
    });
    expect(host.values.get('a')).toBe('1');
    const [tx] = await engine.transactions();
    expect(tx).toMatchObject({ status: 'rolled-back', failure: { phase: 'audit' } });
    expect(sink.records.map((r) => [r.kind, r.trigger])).toEqual([
      ['plan', undefined],
      ['rollback', 'audit-failed'],
    ]);
  });

  it('a pending result that cannot be recorded is rolled back too', async () => {
    const { host, engine, sink, doc, watchdog } = setup({ a: '1' });
    sink.failOn = 'apply';
    await expect(engine.apply(doc({ a: '2' }), { confirmTimeoutS: 30 })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_AUDIT_FAILED',
    });
    expect(host.values.get('a')).toBe('1');
    await watchdog();
    expect((await engine.transactions())[0]?.status).toBe('rolled-back');
  });

  it('a confirm that cannot be recorded leaves the transaction pending', async () => {
    const { host, engine, sink, doc } = setup({ a: '1' });
    const pending = await engine.apply(doc({ a: '2' }), { confirmTimeoutS: 30 });
    sink.failOn = 'confirm';
    await expect(engine.confirm()).rejects.toMatchObject({
      code: 'OPDBUS_ERR_AUDIT_FAILED',
      message: expect.stringMatching(/stays pending/),
    });
    expect((await engine.transactions())[0]?.status).toBe('pending-confirm');
    expect(host.values.get('a')).toBe('2');
    sink.failOn = undefined;
    await engine.confirm(pending.txId);
    expect(sink.records.at(-1)).toMatchObject({ kind: 'confirm', txId: pending.txId });
  });

  it('a restore that cannot be recorded still restores, and says so', async () => {
    const { host, engine, sink, events, doc } = setup({ a: '1' });
    await engine.apply(doc({ a: '2' }));
    sink.failOn = 'rollback';
    const record = await engine.rollback();
    expect(record.status).toBe('rolled-back');
    expect(host.values.get('a')).toBe('1');
    expect(events).toContainEqual(expect.objectContaining({ type: 'audit.failed', kind: 'rollback' }));

    host.failOn.add('b');
    const failed = engine.apply(doc({ a: '2', b: '3' }));
    await expect(failed).rejects.toMatchObject({
      code: 'OPDBUS_ERR_APPLY_FAILED',
      message: expect.stringMatching(/WARNING: the audit log could not record the rollback: disk full/),
      data: { auditFailures: ['the rollback: disk full'] },
    });
    expect(host.values.get('a')).toBe('1');
  });
});

describe('change records', () => {
  it('keeps large values by hash and bounds summaries', async () => {
    const { engine, sink, doc } = setup({ a: '1' });
    const big = 'x'.repeat(10_000);
    await engine.apply(doc({ a: big }));
    const applied = sink.records.find((r) => r.kind === 'apply')!;
    const [change] = applied.changeRecords!;
    expect(change?.before).toBe('1');
    expect(change?.after).toEqual({ $hash: `sha256:${hashJson(big)}`, $bytes: big.length + 2 });
    expect(change?.summary.length).toBeLessThanOrEqual(limits.summaryChars + 1);
  });

  it("withholds secrets with the plugin's redactChange, and all values of a plugin that only has redact", async () => {
    const secretive = memoryHost({ user: 'old' });
    const plain: Plugin<Section, { values: Record<string, string | null> }> = {
      ...memoryPlugin(secretive, 'vault'),
      redact: (section) => section,
    };
    const careful: Plugin<Section, { values: Record<string, string | null> }> = {
      ...memoryPlugin(memoryHost({ password: 'hunter2', user: 'alice' }), 'keys'),
      redactChange: (change) => ({
        before: change.resource === 'password' ? REDACTED : change.before,
        after: change.resource === 'password' ? REDACTED : change.after,
        summary: `set ${change.resource}`,
      }),
    };
    const registry = new PluginRegistry([plain, careful]);
    const sink = new MemorySink();
    const engine = new Engine({
      registry,
      stateDir,
      audit: sink,
      verify: { attempts: 2, initialDelayMs: 1 },
    });
    const doc = parseStateDocument(
      JSON.stringify({
        version: 1,
        plugins: { vault: { user: 'new' }, keys: { password: 's3cret', user: 'bob' } },
      }),
      { source: 'test.json', registry },
    );
    await engine.apply(doc);
    const records = sink.records.find((r) => r.kind === 'apply')!.changeRecords!;
    expect(records.map((c) => [c.plugin, c.resource, c.before, c.after, c.summary])).toEqual([
      ['vault', 'user', REDACTED, REDACTED, 'update user'],
      ['keys', 'password', REDACTED, REDACTED, 'set password'],
      ['keys', 'user', 'alice', 'bob', 'set user'],
    ]);
    const text = JSON.stringify(sink.records);
    expect(text).not.toContain('s3cret');
    expect(text).not.toContain('hunter2');
  });

  it('refuses a plan with more changes than one transaction holds, before anything is recorded', async () => {
    const { engine, sink, doc } = setup({});
    const section: Record<string, string> = {};
    for (let i = 0; i <= limits.planChanges; i++) section[`k${i}`] = 'v';
    await expect(engine.apply(doc(section))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_LIMIT_EXCEEDED',
      data: { limit: 'planChanges', actual: limits.planChanges + 1 },
    });
    expect(sink.records).toEqual([]);
  });

  it('bounds the record of a plan of many large changes well under the ledger entry limit', () => {
    const changes = Array.from({ length: 5000 }, (_, i) =>
      makeChange('mem', {
        resource: `k${i}`,
        op: 'update',
        before: 'a'.repeat(3000),
        after: 'b'.repeat(3000),
      }),
    );
    const records = auditChanges(changes, () => undefined);
    const bytes = Buffer.byteLength(canonicalJson(records));
    expect(bytes).toBeLessThanOrEqual(limits.auditRecordBytes);
    expect(records[0]?.before).toMatchObject({ $bytes: 3002 });
  });
});

describe('apply only some resources, and records outside transactions', () => {
  it('applies, checkpoints and verifies only the resources named in `only`', async () => {
    const { host, engine, sink } = setup({ a: '1', b: '1' });
    const result = await engine.apply(doc2(engine, { a: '2', b: '2' }), { only: new Set(['mem:a']) });
    expect(result.status).toBe('committed');
    expect(host.values.get('a')).toBe('2');
    expect(host.values.get('b')).toBe('1');
    expect(result.plan.changes.map((c) => c.resource)).toEqual(['a']);
    const apply = sink.records.find((r) => r.kind === 'apply');
    expect(apply?.changeRecords?.map((c) => c.resource)).toEqual(['a']);
  });

  it('records a drift step with time, host, actor and process filled in', async () => {
    const { engine, sink } = setup({ a: '1' });
    await engine.record({ kind: 'drift', status: 'detected', plugins: ['mem'], reason: 'a changed' });
    const drift = sink.records.find((r) => r.kind === 'drift');
    expect(drift).toMatchObject({ kind: 'drift', status: 'detected', reason: 'a changed' });
    expect(drift?.actor.name).toBe(engine.actor.name);
    expect(drift?.process.pid).toBe(process.pid);
    expect(typeof drift?.at).toBe('string');
  });

  it('throws OPDBUS_ERR_AUDIT_FAILED when the sink cannot take the record', async () => {
    const { engine, sink } = setup({ a: '1' });
    sink.failOn = 'drift';
    await expect(engine.record({ kind: 'drift', status: 'detected' })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_AUDIT_FAILED',
    });
  });
});

function doc2(engine: Engine, section: Record<string, string | null>): StateDocument {
  return parseStateDocument(JSON.stringify({ version: 1, plugins: { mem: section } }), {
    source: 'test.json',
    registry: engine.registry,
  });
}
