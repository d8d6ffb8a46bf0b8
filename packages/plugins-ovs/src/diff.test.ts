import { describe, expect, it } from 'vitest';
import { diffSection } from './diff.js';
import { ovsSchema, type OvsSection } from './schema.js';

const observed: OvsSection = {
  bridges: [
    {
      name: 'br0',
      datapath_type: 'system',
      stp: false,
      external_ids: { owner: 'me', keep: 'x' },
      controllers: [{ target: 'tcp:192.0.2.1:6653' }],
      ports: [
        { name: 'p1', tag: 10, interfaces: [{ name: 'p1', type: 'internal' }] },
        { name: 'gone', state: 'absent' },
      ],
    },
    { name: 'new0', state: 'absent' },
  ],
  managers: [{ target: 'ptcp:6640', inactivity_probe: 5000 }],
};

describe('diffSection (pure)', () => {
  it('is empty on the observed state itself, and for what already matches', () => {
    expect(diffSection(observed, observed)).toEqual([]);
    expect(
      diffSection(
        {
          bridges: [
            {
              name: 'br0',
              datapath_type: 'system',
              external_ids: { owner: 'me' },
              ports: [{ name: 'p1', tag: 10 }],
            },
          ],
        },
        observed,
      ),
    ).toEqual([]);
  });

  it('compares only what the document names; null removes a key; system is the default type', () => {
    const changes = diffSection(
      {
        bridges: [
          {
            name: 'br0',
            fail_mode: 'secure',
            external_ids: { owner: null, tier: 1 },
            ports: [{ name: 'p1', interfaces: [{ name: 'p1', type: 'internal', options: { x: true } }] }],
          },
        ],
      },
      observed,
    );
    expect(changes.map((c) => [c.op, c.resource, c.summary])).toEqual([
      [
        'update',
        'bridge/br0',
        'update bridge br0: fail_mode (unset) → secure, external_ids.owner me → (unset), external_ids.tier (unset) → 1',
      ],
      [
        'update',
        'bridge/br0/port/p1',
        'update port p1 on bridge br0: interfaces.p1.options.x (unset) → true',
      ],
    ]);
    expect(changes[1]?.dependsOn).toEqual(['bridge/br0']);
  });

  it('creates a bridge with its local port unless the document names it, and its ports after it', () => {
    const changes = diffSection(
      { bridges: [{ name: 'new0', datapath_type: 'netdev', ports: [{ name: 'a1' }] }] },
      observed,
    );
    expect(changes.map((c) => [c.op, c.resource])).toEqual([
      ['create', 'bridge/new0'],
      ['create', 'bridge/new0/port/a1'],
    ]);
    expect(changes[0]?.after).toMatchObject({ name: 'new0', datapath_type: 'netdev', $localPort: true });
    const own = diffSection({ bridges: [{ name: 'new0', ports: [{ name: 'new0', tag: 5 }] }] }, observed);
    expect(own[0]?.after).toMatchObject({ $localPort: false });
  });

  it('removes only what is marked absent; an absent bridge takes its ports along', () => {
    const changes = diffSection(
      {
        bridges: [
          {
            name: 'br0',
            controllers: [{ target: 'tcp:192.0.2.1:6653', state: 'absent' }],
            ports: [
              { name: 'p1', state: 'absent' },
              { name: 'gone', state: 'absent' },
            ],
          },
        ],
        managers: [{ target: 'ptcp:6640', state: 'absent' }],
      },
      observed,
    );
    expect(changes.map((c) => [c.op, c.resource])).toEqual([
      ['update', 'bridge/br0'],
      ['delete', 'bridge/br0/port/p1'],
      ['delete', 'manager/ptcp:6640'],
    ]);
    expect(changes[2]?.risk?.reason).toContain('can cut remote management');
    expect(
      diffSection({ bridges: [{ name: 'br0', state: 'absent', ports: [{ name: 'p1' }] }] }, observed).map(
        (c) => c.summary,
      ),
    ).toEqual(['delete bridge br0 and its ports']);
  });

  it('the schema refuses duplicates and contradictions, with their paths', () => {
    const result = ovsSchema.safeParse({
      bridges: [
        { name: 'a', ports: [{ name: 'p', interfaces: [{ name: 'i', type: 'vxlan', peer: 'x' }] }] },
        { name: 'b', ports: [{ name: 'p', interfaces: [{ name: 'i' }] }] },
      ],
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['bridges.0.ports.0.interfaces.0.peer', 'peer is for patch interfaces, but this one has type vxlan'],
      ['bridges.1.ports.0.name', 'port p is also named under bridge a; port names are unique across bridges'],
      [
        'bridges.1.ports.0.interfaces.0.name',
        'interface i is also named in port p; interface names are unique',
      ],
    ]);
  });
});
