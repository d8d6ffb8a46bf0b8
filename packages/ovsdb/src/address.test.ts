import { describe, expect, it } from 'vitest';
import { formatOvsdbAddress, parseOvsdbAddress } from './address.js';

describe('parseOvsdbAddress', () => {
  it('parses the ovs-vsctl --db forms', () => {
    expect(parseOvsdbAddress('unix:/run/openvswitch/db.sock')).toEqual({
      kind: 'unix',
      path: '/run/openvswitch/db.sock',
    });
    expect(parseOvsdbAddress('tcp:127.0.0.1:6641')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 6641 });
    expect(parseOvsdbAddress('tcp:ovs.example')).toEqual({ kind: 'tcp', host: 'ovs.example', port: 6640 });
    expect(parseOvsdbAddress('ssl:[fe80::1]:6643')).toEqual({ kind: 'ssl', host: 'fe80::1', port: 6643 });
    expect(parseOvsdbAddress('ssl:[::1]')).toEqual({ kind: 'ssl', host: '::1', port: 6640 });
  });

  it('round-trips through formatOvsdbAddress', () => {
    for (const a of ['unix:/tmp/x.sock', 'tcp:10.0.0.1:6640', 'ssl:[::1]:6641'])
      expect(formatOvsdbAddress(parseOvsdbAddress(a))).toBe(a);
  });

  it('says what is wrong', () => {
    const cases: [string, RegExp][] = [
      ['/run/openvswitch/db.sock', /has no scheme/],
      ['unix:', /socket path is empty/],
      ['tcp::6640', /host is empty/],
      ['tcp:1.2.3.4:99999', /port "99999"/],
      ['tcp:::1:6640', /IPv6 host in brackets/],
      ['ptcp:6640', /passive .* connects with "tcp:"/],
      ['http://x', /unknown scheme "http:"/],
    ];
    for (const [address, pattern] of cases)
      expect(() => parseOvsdbAddress(address)).toThrow(
        expect.objectContaining({
          code: 'OPDBUS_ERR_OVSDB_ADDRESS',
          message: expect.stringMatching(pattern),
        }),
      );
  });
});
