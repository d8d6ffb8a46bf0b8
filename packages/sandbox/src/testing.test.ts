import { describe, expect, it } from 'vitest';
import { isRequired, requiredComponents } from './testing.js';
import { requirement } from './probe.js';

describe('OPDBUS_REQUIRE', () => {
  it('reads `all` and comma-separated component names', () => {
    expect(requiredComponents('all')).toBe('all');
    expect(requiredComponents(' netns , ovsdb,all')).toBe('all');
    expect([...(requiredComponents('netns, ovsdb') as Set<string>)]).toEqual(['netns', 'ovsdb']);
    expect([...(requiredComponents('') as Set<string>)]).toEqual([]);
  });

  it('requires a component when it is named or when all are', () => {
    expect(isRequired('ovsdb', 'all')).toBe(true);
    expect(isRequired('ovsdb', 'netns,ovsdb')).toBe(true);
    expect(isRequired('dbus', 'netns,ovsdb')).toBe(false);
    expect(isRequired('dbus', '')).toBe(false);
  });

  it('builds requirements from conditions, naming the reason', () => {
    expect(requirement('lstopo', true)).toEqual({ component: 'lstopo', available: true });
    expect(requirement('lstopo', false, 'apt-get install hwloc')).toEqual({
      component: 'lstopo',
      available: false,
      reason: 'apt-get install hwloc',
    });
    expect(requirement('dbus', { available: false, reason: 'no dbus-daemon' })).toEqual({
      component: 'dbus',
      available: false,
      reason: 'no dbus-daemon',
    });
  });
});
