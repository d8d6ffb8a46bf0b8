import { describe, expect, it } from 'vitest';
import { featurize, flatten, resourceKeys, resourceTokens } from './features.js';

describe('featurizer', () => {
  it('collapses numbers and ids in resource templates, keeps the collection', () => {
    expect(resourceKeys('network', 'links/cali3fa9c0d1e2b')).toEqual({
      kind: 'network:links',
      template: 'network:links/cali*',
    });
    expect(resourceKeys('systemd', 'units/trainer@3.service').template).toBe(
      'systemd:units/trainer@#.service',
    );
    expect(resourceKeys('containers', 'machines/job-6a94ebb6e9').template).toBe('containers:machines/job-*');
    expect(resourceKeys('sysctl', 'net.ipv4.ip_forward')).toEqual({
      kind: 'sysctl:',
      template: 'sysctl:net.ipv#.ip_forward',
    });
    expect(resourceTokens('units/nginx.service')).toEqual(['units', 'nginx', 'service']);
  });

  it('flattens values into leaves, numbers and numeric strings as numbers', () => {
    const out: [string, number | string][] = [];
    flatten({ b: [1, 'x'], a: { c: '42', d: true, e: null } }, '', out);
    expect(out).toEqual([
      ['a.c', 42],
      ['a.d', 'true'],
      ['a.e', 'null'],
      ['b[]', 1],
      ['b[]', 'x'],
    ]);
  });

  it('keeps the value before an update, and reads a delete from before', () => {
    const f = featurize({
      at: '2026-03-03T09:30:00Z',
      host: 'db-01',
      actor: 'alice',
      plugin: 'sysctl',
      resource: 'vm.swappiness',
      op: 'update',
      before: { value: 10 },
      after: { value: 60 },
    });
    expect(f.what).toBe('sysctl:vm.swappiness|update');
    expect(f.leaves).toEqual([{ field: 'sysctl:vm.swappiness#value', value: 60, before: 10 }]);
    const d = featurize({ ...f.event, op: 'delete', before: { active: true }, after: null });
    expect(d.leaves).toEqual([{ field: 'sysctl:vm.swappiness#active', value: 'true' }]);
  });
});
