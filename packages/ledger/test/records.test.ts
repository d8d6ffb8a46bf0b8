// Per-change audit records end to end: the real engine records into a real ledger through the
// LedgerAuditSink; the records verify, read back as change events, and old ledgers stay readable.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Engine,
  PluginRegistry,
  REDACTED,
  definePlugin,
  parseStateDocument,
  type ChangeSpec,
  type JsonValue,
} from '@opdbus/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  Ledger,
  LedgerAuditSink,
  isAuditEntry,
  isSnapshotEntry,
  readChangeEvents,
  verifyLedger,
  type ChangeEvent,
} from '../src/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'opdbus-records-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A key/value "host" whose `secret.*` keys are secrets its redaction withholds. */
function kvPlugin(host: Map<string, string>) {
  return definePlugin<Record<string, string | null>, { values: Record<string, string | null> }>({
    name: 'kv',
    version: '1.0.0',
    description: 'key/value test plugin',
    schema: z.record(z.string(), z.string().nullable()),
    probe: () => Promise.resolve({ available: true }),
    query: (_ctx, options) => {
      const out: Record<string, string | null> = {};
      for (const key of Object.keys(options?.scope ?? Object.fromEntries(host)))
        out[key] = host.get(key) ?? null;
      return Promise.resolve(out);
    },
    diff: (desired, observed) => {
      const changes: ChangeSpec[] = [];
      for (const [key, want] of Object.entries(desired)) {
        const have = observed[key] ?? null;
        if (have === want) continue;
        changes.push({
          resource: key,
          op: have === null ? 'create' : want === null ? 'delete' : 'update',
          before: have,
          after: want,
          summary: `set ${key}`,
          ...(key === 'mgmt' ? { risk: { reason: 'the management address' } } : {}),
        });
      }
      return changes;
    },
    apply: (change) => {
      if (change.after === null) host.delete(change.resource);
      else host.set(change.resource, String(change.after));
      return Promise.resolve();
    },
    checkpoint: (_ctx, changes) =>
      Promise.resolve({
        values: Object.fromEntries(changes.map((c) => [c.resource, host.get(c.resource) ?? null])),
      }),
    restore: (token) => {
      for (const [key, value] of Object.entries(token.values)) {
        if (value === null) host.delete(key);
        else host.set(key, value);
      }
      return Promise.resolve();
    },
    redact: (section) => section,
    redactChange: (change) => {
      const secret = change.resource.startsWith('secret.');
      return {
        before: secret && change.before !== null ? REDACTED : change.before,
        after: secret && change.after !== null ? REDACTED : change.after,
      };
    },
  });
}

function setup(initial: Record<string, string>) {
  const host = new Map(Object.entries(initial));
  const registry = new PluginRegistry([kvPlugin(host)]);
  const ledgerDir = join(dir, 'ledger');
  const engine = new Engine({
    registry,
    stateDir: join(dir, 'state'),
    audit: new LedgerAuditSink({ ledger: { dir: ledgerDir, origin: 'testhost/opdbus' } }),
    verify: { attempts: 2, initialDelayMs: 1 },
  });
  const doc = (section: Record<string, string | null>) =>
    parseStateDocument(JSON.stringify({ version: 1, plugins: { kv: section } }), {
      source: 'kv.yaml',
      registry,
    });
  return { host, engine, doc, ledgerDir };
}

async function events(ledgerDir: string, from = 0): Promise<ChangeEvent[]> {
  const ledger = await Ledger.open({ dir: ledgerDir, readOnly: true });
  try {
    const out: ChangeEvent[] = [];
    for await (const event of readChangeEvents(ledger, { from })) out.push(event);
    return out;
  } finally {
    await ledger.close();
  }
}

describe('per-change records in the ledger (format 2)', () => {
  it('an apply entry holds each change with before/after; secrets are withheld; the ledger verifies', async () => {
    const { engine, doc, ledgerDir } = setup({ a: '1', 'secret.token': 'hunter2' });
    const result = await engine.apply(doc({ a: '2', b: 'new', 'secret.token': 's3cret' }));
    const ledger = await Ledger.open({ dir: ledgerDir, readOnly: true });
    const values: JsonValue[] = [];
    for await (const entry of ledger.entries()) values.push(entry.value);
    await ledger.close();
    expect(values.map((v) => (v as { kind: string }).kind)).toEqual(['plan', 'apply']);
    const apply = values[1]!;
    expect(isAuditEntry(apply)).toBe(true);
    expect(apply).toMatchObject({
      v: 2,
      kind: 'apply',
      status: 'committed',
      txId: result.txId,
      host: expect.any(String),
      changes: 3,
      changeRecords: [
        { plugin: 'kv', resource: 'a', op: 'update', before: '1', after: '2', risk: null, applied: true },
        { plugin: 'kv', resource: 'b', op: 'create', before: null, after: 'new', applied: true },
        {
          plugin: 'kv',
          resource: 'secret.token',
          op: 'update',
          before: REDACTED,
          after: REDACTED,
          applied: true,
        },
      ],
    });
    expect((values[0] as { changeRecords: unknown[] }).changeRecords).toHaveLength(3);
    const text = JSON.stringify(values);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('s3cret');
    expect((await verifyLedger(ledgerDir)).ok).toBe(true);
  });

  it('reads as change events: forward changes of applies, inverse changes of rollbacks', async () => {
    const { engine, doc, ledgerDir } = setup({ a: '1' });
    const applied = await engine.apply(doc({ a: '2', mgmt: '10.0.0.1' }), { force: true });
    await engine.rollback();
    const all = await events(ledgerDir);
    expect(all.map((e) => [e.kind, e.op, e.resource, e.before, e.after, e.status])).toEqual([
      ['apply', 'update', 'a', '1', '2', 'committed'],
      ['apply', 'create', 'mgmt', null, '10.0.0.1', 'committed'],
      ['rollback', 'delete', 'mgmt', '10.0.0.1', null, 'rolled-back'],
      ['rollback', 'update', 'a', '2', '1', 'rolled-back'],
    ]);
    expect(all[0]).toMatchObject({
      v: 1,
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      host: expect.any(String),
      actor: expect.any(String),
      actorKind: 'user',
      plugin: 'kv',
      txId: applied.txId,
      risk: null,
      index: 1,
    });
    expect(all[1]?.risk).toBe('the management address');
    expect(all[2]).toMatchObject({ trigger: 'requested', changeId: all[1]?.changeId });
    expect((await events(ledgerDir, 2)).map((e) => e.kind)).toEqual(['rollback', 'rollback']);
  });
});

describe('a format 1 ledger (written before per-change records)', () => {
  it('still opens, verifies and reads: its entries have no change events', async () => {
    const copy = join(dir, 'v1');
    await cp(fileURLToPath(new URL('./fixtures/ledger-v1', import.meta.url)), copy, { recursive: true });
    expect((await verifyLedger(copy)).ok).toBe(true);
    const ledger = await Ledger.open({ dir: copy, readOnly: true });
    const kinds: string[] = [];
    for await (const entry of ledger.entries()) {
      expect(isAuditEntry(entry.value) || isSnapshotEntry(entry.value)).toBe(true);
      kinds.push(`${(entry.value as { v: number }).v}:${(entry.value as { kind: string }).kind}`);
    }
    await ledger.close();
    expect(kinds).toEqual(['1:plan', '1:apply', '1:snapshot.created', '1:rollback']);
    expect(await events(copy)).toEqual([]);
  });
});
