import { describe, expect, it } from 'vitest';
import { parseDefinition } from './definition.js';

describe('mesh definitions', () => {
  it('fills in defaults and canonicalises', () => {
    const { settings, nodes } = parseDefinition(
      'name: lab\npool: 10.99.0.0/24\nnodes:\n  - { name: n1, endpoint: "192.0.2.1:51820", subnets: [10.200.1.0/24] }\n',
      'mesh.yaml',
    );
    expect(settings).toEqual({
      name: 'lab',
      pool: '10.99.0.0/24',
      topology: 'full',
      interface: 'wg-lab',
      listenPort: 51820,
      keepalive: 25,
      mtu: 1420,
    });
    expect(nodes[0]).toEqual({ name: 'n1', endpoint: '192.0.2.1:51820', subnets: ['10.200.1.0/24'] });
  });

  it('names the file and the path of what is wrong', () => {
    expect(() => parseDefinition('name: lab\npool: 10.99.0.7/24\n', 'mesh.yaml')).toThrow(
      'mesh.yaml: pool: 10.99.0.7/24 has host bits set; write the network (10.99.0.0/24).',
    );
    expect(() =>
      parseDefinition('name: lab\npool: 10.99.0.0/24\ntopology: hub-and-spoke\n', 'mesh.yaml'),
    ).toThrow(/needs `hub: NODE`/);
    expect(() =>
      parseDefinition('name: lab\npool: 10.99.0.0/24\nnodes: [{ name: a, address: 10.98.0.1 }]\n', 'm.yaml'),
    ).toThrow('m.yaml: nodes[0].address: 10.98.0.1 is not in the pool 10.99.0.0/24.');
    expect(() => parseDefinition('name: Lab\npool: 10.99.0.0/24\n', 'm.yaml')).toThrow(
      /m\.yaml: name: lowercase/,
    );
  });
});
