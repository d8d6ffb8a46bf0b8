import { describe, expect, it } from 'vitest';
import { ovsSchema, targetPathProblem } from './schema.js';

const problems = (section: unknown): string[] => {
  const result = ovsSchema.safeParse(section);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('names that become files and devices', () => {
  it('a bridge and its device interfaces follow the kernel rules for interface names', () => {
    expect(problems({ bridges: [{ name: 'br-ethéééééé' }] })).toEqual([
      expect.stringMatching(/^bridges\.0\.name: an interface name has at most 15 bytes/),
    ]);
    expect(problems({ bridges: [{ name: '..' }] })).toEqual(
      expect.arrayContaining([expect.stringContaining('bridges.0.name')]),
    );
    expect(
      problems({
        bridges: [{ name: 'br0', ports: [{ name: 'p', interfaces: [{ name: 'a:b', type: 'internal' }] }] }],
      }),
    ).toEqual([expect.stringMatching(/interfaces\.0\.name: an interface name cannot contain ":"/)]);
    // Patch and tunnel interfaces are not kernel devices: OVS allows longer names.
    expect(
      problems({
        bridges: [
          {
            name: 'br-int',
            ports: [
              {
                name: 'patch-br-int-to-br-ex',
                interfaces: [{ name: 'patch-br-int-to-br-ex', type: 'patch', peer: 'patch-br-ex-to-br-int' }],
              },
            ],
          },
        ],
      }),
    ).toEqual([]);
  });

  it('unix socket targets are plain names or normalised absolute paths', () => {
    for (const ok of [
      'punix:db.sock',
      'punix:/run/openvswitch/br0.controller',
      'unix:/var/run/x.sock',
      'tcp:1.2.3.4:6653',
    ])
      expect(targetPathProblem(ok), ok).toBeUndefined();
    for (const bad of [
      'punix:../../etc/x',
      'punix:/run/openvswitch/../../etc/x',
      'unix:a/b',
      'punix:',
      'punix:/run//x',
    ])
      expect(targetPathProblem(bad), bad).toBeDefined();
    expect(problems({ managers: [{ target: 'punix:/run/openvswitch/../../etc/cron.d/x' }] })).toEqual([
      expect.stringMatching(/^managers\.0\.target: a unix socket path must be normalised/),
    ]);
  });
});
