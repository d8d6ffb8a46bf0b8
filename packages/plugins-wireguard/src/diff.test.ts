import { describe, expect, it } from 'vitest';
import { diffSection, peerResource } from './diff.js';
import type { WireguardSection } from './schema.js';

const K1 = 'kwy8hNapXX2YY1kkuW5WFFpPLNfC7aRpq33IoRsQiDQ=';
const K2 = 'AEMWQQHUXBtHOz9tJoMJmd0YV9vQrwsUEnxmP74ToG0=';
const K3 = 'a+b/cdefghijklmnopqrstuvwxyz0123456789ABCDE=';

describe('diffSection', () => {
  const observed: WireguardSection = {
    interfaces: [
      {
        name: 'wg0',
        state: 'up',
        privateKey: { stored: 'k1' },
        publicKey: K1,
        listenPort: 51820,
        mtu: 1420,
        addresses: ['10.0.0.1/24'],
        peers: [
          { publicKey: K2, endpoint: '192.0.2.2:51820', allowedIPs: ['10.0.0.2/32'] },
          { publicKey: K3, state: 'absent' },
        ],
      },
    ],
  };

  it('is empty when the fields named agree, in any spelling', () => {
    expect(
      diffSection(
        {
          interfaces: [
            {
              name: 'wg0',
              listenPort: 51820,
              addresses: ['10.0.0.1/24'],
              peers: [
                {
                  publicKey: K2,
                  endpoint: '192.0.2.2:51820',
                  allowedIPs: ['10.0.0.2'],
                  persistentKeepalive: 0,
                },
              ],
            },
          ],
        },
        observed,
      ),
    ).toEqual([]);
  });

  it('changes peers in place, each depending on its interface', () => {
    const changes = diffSection(
      {
        interfaces: [
          {
            name: 'wg0',
            peers: [
              { publicKey: K2, allowedIPs: ['10.0.0.2/32', '10.9.0.7/16'] },
              { publicKey: K3, endpoint: '[2001:db8:0::1]:1' },
            ],
          },
        ],
      },
      observed,
    );
    expect(changes.map((c) => [c.op, c.resource])).toEqual([
      ['update', peerResource('wg0', K2)],
      ['create', 'peer/wg0/a-b_cdefghijklmnopqrstuvwxyz0123456789ABCDE'],
    ]);
    expect(changes[0]!.summary).toBe('set peer AEMWQQHU… of wg0: allowed IPs 10.0.0.2/32, 10.9.0.0/16');
    expect(changes[1]!.after).toEqual({ publicKey: K3, endpoint: '[2001:db8::1]:1' });
    for (const c of changes) expect(c.dependsOn).toEqual(['interface/wg0']);
  });

  it('rotates a key as an interface update, and deletes without touching peers', () => {
    const rotate = diffSection({ interfaces: [{ name: 'wg0', privateKey: { stored: 'k2' } }] }, observed);
    expect(rotate).toMatchObject([
      { op: 'update', resource: 'interface/wg0', summary: 'set WireGuard interface wg0: private key' },
    ]);
    const gone = diffSection(
      { interfaces: [{ name: 'wg0', state: 'absent', peers: [{ publicKey: K2, state: 'absent' }] }] },
      observed,
    );
    expect(gone.map((c) => [c.op, c.resource])).toEqual([['delete', 'interface/wg0']]);
  });

  it('creates a new interface before its peers', () => {
    const changes = diffSection(
      { interfaces: [{ name: 'wg1', listenPort: 1, peers: [{ publicKey: K1, allowedIPs: [] }] }] },
      { interfaces: [{ name: 'wg1', state: 'absent' }] },
    );
    expect(changes.map((c) => c.summary)).toEqual([
      'create WireGuard interface wg1 (port 1, up)',
      'add peer kwy8hNap… to wg1',
    ]);
  });
});
