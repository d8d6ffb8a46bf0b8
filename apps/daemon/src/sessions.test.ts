import { describe, expect, it } from 'vitest';
import { SessionStore } from './sessions.js';

describe('SessionStore', () => {
  it('keeps a session while it is used, ends it when idle, and at its maximum age', () => {
    const store = new SessionStore({ idleMs: 1000, maxAgeMs: 2500 });
    const s = store.create({ name: 'alice', scope: 'read' }, 0);
    expect(s.id).not.toBe(s.csrf);
    expect(store.get(s.id, 900)?.identity).toEqual({ name: 'alice', scope: 'read' });
    expect(store.get(s.id, 1800)).toBeDefined();
    expect(store.get(s.id, 2600)).toBeUndefined();
    const t = store.create({ name: 'bob', scope: 'write' }, 0);
    expect(store.get(t.id, 1001)).toBeUndefined();
    expect(store.get('nope')).toBeUndefined();
  });

  it('checks the CSRF token, logs out and stays bounded', () => {
    const store = new SessionStore({ max: 2 });
    const a = store.create({ name: 'a', scope: 'write' });
    expect(SessionStore.csrfMatches(a, a.csrf)).toBe(true);
    expect(SessionStore.csrfMatches(a, `${a.csrf}x`)).toBe(false);
    expect(SessionStore.csrfMatches(a, undefined)).toBe(false);
    const b = store.create({ name: 'b', scope: 'write' });
    store.create({ name: 'c', scope: 'write' });
    expect(store.size).toBe(2);
    expect(store.get(a.id)).toBeUndefined();
    expect(store.delete(b.id)).toBe(true);
    expect(store.get(b.id)).toBeUndefined();
  });
});
