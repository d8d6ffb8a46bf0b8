import { describe, expect, it } from 'vitest';
import { makeChange, resourceKey, type ChangeSpec } from './change.js';
import { isOpdbusError } from './errors.js';
import { assertPlan, createPlan } from './planner.js';

const spec = (
  resource: string,
  dependsOn: ChangeSpec['dependsOn'] = [],
  op: ChangeSpec['op'] = 'create',
): ChangeSpec => ({
  resource,
  op,
  before: null,
  after: resource,
  dependsOn,
});

describe('createPlan', () => {
  it('keeps input order when nothing depends on anything', () => {
    const changes = ['c', 'a', 'b'].map((r) => makeChange('p', spec(r)));
    expect(createPlan(changes).changes.map((c) => c.resource)).toEqual(['c', 'a', 'b']);
  });

  it('puts a change after what it depends on, across plugins', () => {
    const changes = [
      makeChange('network', spec('address/br0/10.0.0.1/24', ['link/br0'])),
      makeChange('ovs', spec('port/p1', [{ plugin: 'network', resource: 'link/veth0' }])),
      makeChange('network', spec('link/veth0', ['link/br0'])),
      makeChange('network', spec('link/br0')),
    ];
    const order = createPlan(changes).changes.map(resourceKey);
    expect(order).toEqual([
      'network:link/br0',
      'network:address/br0/10.0.0.1/24',
      'network:link/veth0',
      'ovs:port/p1',
    ]);
    for (const [i, c] of createPlan(changes).changes.entries()) {
      for (const dep of c.dependsOn) {
        const j = order.indexOf(dep);
        if (j >= 0) expect(j).toBeLessThan(i);
      }
    }
  });

  it('ignores dependencies on resources the plan does not change', () => {
    const plan = createPlan([makeChange('p', spec('a', ['not-in-plan']))]);
    expect(plan.changes).toHaveLength(1);
  });

  it('keeps several changes of one resource in their input order', () => {
    const changes = [
      makeChange('p', spec('x', [], 'delete')),
      makeChange('p', { ...spec('x'), after: 'new' }),
    ];
    expect(createPlan(changes).changes.map((c) => c.op)).toEqual(['delete', 'create']);
  });

  it('names the cycle', () => {
    const changes = [
      makeChange('p', spec('a', ['c'])),
      makeChange('p', spec('b', ['a'])),
      makeChange('p', spec('c', ['b'])),
      makeChange('p', spec('d')),
    ];
    let caught: unknown;
    try {
      createPlan(changes);
    } catch (err) {
      caught = err;
    }
    expect(isOpdbusError(caught, 'OPDBUS_ERR_PLAN_CYCLE')).toBe(true);
    const message = (caught as Error).message;
    expect(message).toMatch(/p:a \(create\)/);
    expect(message).toMatch(/p:b \(create\)/);
    expect(message).toMatch(/p:c \(create\)/);
    expect(message).not.toMatch(/p:d/);
    expect(message).toMatch(/→/);
  });

  it('reports a self-dependency through a duplicate resource as a cycle', () => {
    const changes = [makeChange('p', spec('a', ['b'])), makeChange('p', spec('b', ['a']))];
    expect(() => createPlan(changes)).toThrow(/cycle/);
  });

  it('refuses the same change twice', () => {
    const c = makeChange('p', spec('a'));
    expect(() => createPlan([c, c])).toThrow(/same change twice/);
  });

  it('hashes content: same changes same hash, different order or content different hash', () => {
    const a = makeChange('p', spec('a'));
    const b = makeChange('p', spec('b'));
    expect(createPlan([a, b]).hash).toBe(
      createPlan([makeChange('p', spec('a')), makeChange('p', spec('b'))]).hash,
    );
    expect(createPlan([a, b]).hash).not.toBe(createPlan([b, a]).hash);
    expect(a.id).toBe(makeChange('p', spec('a')).id);
    expect(a.id).not.toBe(makeChange('p', { ...spec('a'), after: 'other' }).id);
  });

  it('round-trips through JSON and detects tampering', () => {
    const plan = createPlan([makeChange('p', spec('a')), makeChange('p', spec('b', ['a']))]);
    const copy = JSON.parse(JSON.stringify(plan)) as typeof plan;
    expect(assertPlan(copy)).toEqual(plan);
    copy.changes[0]!.after = 'evil';
    expect(() => assertPlan(copy)).toThrow(/hash mismatch/);
  });
});
