import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { definePlugin, makeChange, type AnyPlugin } from '@opdbus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ChangeScorer, changeEventsOf } from './changes.js';
import { generateFleetHistory } from './generator.js';
import { trainModel } from './model.js';

let dir: string;
const g = generateFleetHistory({ seed: 5, weeks: 3, testWeeks: 1, hosts: 12 });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'opdbus-ml-changes-'));
  await (await trainModel(g.history, { autoencoder: false })).save(join(dir, 'model'));
});
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** A plugin that holds a secret: its redaction must reach the model, as it reaches the ledger. */
const secretive = definePlugin<Record<string, string>, null>({
  name: 'users',
  version: '1.0.0',
  description: 'test',
  schema: z.record(z.string(), z.string()),
  probe: () => Promise.resolve({ available: true }),
  query: () => Promise.resolve({}),
  diff: () => [],
  apply: () => Promise.resolve(),
  checkpoint: () => Promise.resolve(null),
  restore: () => Promise.resolve(),
  redact: (s) => s,
  redactChange: (c) => ({
    before: c.before === null ? null : { $redacted: true },
    after: { $redacted: true },
    summary: 'set a password',
  }),
});
const plugins = (name: string): AnyPlugin | undefined =>
  name === 'users' ? (secretive as AnyPlugin) : undefined;

describe('changeEventsOf', () => {
  it('makes change events as the ledger records them: redacted, with who, where and when', () => {
    const change = makeChange('users', {
      resource: 'alice.password',
      op: 'update',
      before: 'old',
      after: 'new',
    });
    const at = new Date('2026-12-01T10:00:00Z');
    expect(changeEventsOf([change], plugins, { actor: 'bob', host: 'web-1', at })).toEqual([
      {
        at: '2026-12-01T10:00:00.000Z',
        host: 'web-1',
        actor: 'bob',
        plugin: 'users',
        resource: 'alice.password',
        op: 'update',
        before: { $redacted: true },
        after: { $redacted: true },
      },
    ]);
  });

  it('scores drift as what the host underwent: the inverse of the correcting change', () => {
    // The daemon's correction creates what the host deleted.
    const correction = makeChange('network', {
      resource: 'br0',
      op: 'create',
      before: null,
      after: { up: true },
    });
    const [event] = changeEventsOf([correction], plugins, { actor: 'drift', drift: true });
    expect(event).toMatchObject({ op: 'delete', before: { up: true }, after: null });
  });
});

describe('ChangeScorer', () => {
  it('scores engine changes like the history scores them, with keys and ids to match the plan', async () => {
    const scorer = await ChangeScorer.load(join(dir, 'model'), { threshold: 0.9 });
    expect(scorer.threshold).toBe(0.9);
    // A routine change of the history, as the engine would plan it, on the host that made it.
    const routine = g.history.at(-1)!;
    const usual = makeChange(routine.plugin, {
      resource: routine.resource,
      op: routine.op,
      before: routine.before,
      after: routine.after,
    });
    const odd = makeChange('users', { resource: 'root.password', op: 'update', before: 'x', after: 'y' });
    const host = new ChangeScorer(scorer.model, { host: routine.host, threshold: 0.9 });
    const when = new Date(routine.at);
    const [a] = host.score([usual], plugins, { actor: routine.actor, at: when });
    const [b] = host.score([odd], plugins, { actor: 'mallory', at: when });
    expect(a).toMatchObject({ key: `${routine.plugin}:${routine.resource}`, changeId: usual.id });
    expect(b).toMatchObject({ key: 'users:root.password', changeId: odd.id, anomalous: true });
    expect(b!.score).toBeGreaterThan(a!.score);
    expect(b!.reasons.length).toBeGreaterThan(0);
    expect(host.score([], plugins, { actor: 'x' })).toEqual([]);
  });

  it('scores drift without its actor, who is never known', async () => {
    const scorer = await ChangeScorer.load(join(dir, 'model'));
    const routine = g.history.at(-1)!;
    // The correction of a drift: the inverse of what the host underwent (a routine change).
    const correction = makeChange(routine.plugin, {
      resource: routine.resource,
      op: routine.op === 'create' ? 'delete' : routine.op === 'delete' ? 'create' : 'update',
      before: routine.after,
      after: routine.before,
    });
    const host = new ChangeScorer(scorer.model, { host: routine.host });
    const when = new Date(routine.at);
    const [asDrift] = host.score([correction], plugins, { actor: 'drift', at: when, drift: true });
    const [asChange] = scorer.model.score(
      changeEventsOf([correction], plugins, { actor: 'drift', at: when, host: routine.host, drift: true }),
    );
    expect(asDrift!.score).toBeLessThan(asChange!.score);
    expect(asDrift!.reasons.join(' ')).not.toMatch(/actor/);
  });
});
