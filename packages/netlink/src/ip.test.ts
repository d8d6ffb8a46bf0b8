import { isOpdbusError } from '@opdbus/core';
import { describe, expect, it } from 'vitest';
import {
  canonicalCidr,
  canonicalIp,
  canonicalMac,
  canonicalNetwork,
  formatIpv6,
  hasHostBits,
  parseCidr,
  parseIp,
  parseMac,
  prefixContains,
  tryParseCidr,
  tryParseIp,
} from './ip.js';

const v6 = (text: string): string => formatIpv6(parseIp(text).bytes);

describe('IP addresses', () => {
  it('parses IPv4 and rejects what inet_pton rejects', () => {
    expect([...parseIp('10.0.0.254').bytes]).toEqual([10, 0, 0, 254]);
    for (const bad of ['10.0.0', '10.0.0.256', '1.2.3.4.5', '01.2.3.4', '1.2.3.-4', 'a.b.c.d', ''])
      expect(tryParseIp(bad), bad).toBeUndefined();
  });

  it('formats IPv6 as glibc inet_ntop does (RFC 5952, IPv4-mapped in dotted form)', () => {
    expect(v6('fd00:0:0:0:0:0:0:1')).toBe('fd00::1');
    expect(v6('FD00::1')).toBe('fd00::1');
    expect(v6('::')).toBe('::');
    expect(v6('::1')).toBe('::1');
    expect(v6('1::')).toBe('1::');
    expect(v6('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1'); // first of equal runs
    expect(v6('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1'); // a single zero group is not compressed
    expect(v6('::ffff:10.1.2.3')).toBe('::ffff:10.1.2.3');
    expect(v6('::10.1.2.3')).toBe('::10.1.2.3');
    expect(v6('fe80::1:2:3:4')).toBe('fe80::1:2:3:4');
    expect(v6('0:0:0:0:0:0:0:0')).toBe('::');
  });

  it('rejects malformed IPv6', () => {
    for (const bad of [
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
      'fe80::1%eth0',
      '12345::',
      ':::',
      'g::1',
      '1:2:3:4:5:6:7',
    ])
      expect(tryParseIp(bad), bad).toBeUndefined();
  });

  it('parses prefixes, canonicalises, finds host bits and containment', () => {
    expect(parseCidr('10.0.0.1/24')).toMatchObject({ family: 4, prefixLength: 24 });
    expect(tryParseCidr('10.0.0.1')).toMatchObject({ prefixLength: 32 });
    expect(tryParseCidr('fd00::1')).toMatchObject({ prefixLength: 128 });
    expect(tryParseCidr('10.0.0.1/33')).toBeUndefined();
    expect(canonicalCidr('fd00:0::1/64')).toBe('fd00::1/64');
    expect(canonicalNetwork('10.9.1.7/16')).toBe('10.9.0.0/16');
    expect(canonicalNetwork('fd00::1/64')).toBe('fd00::/64');
    expect(canonicalIp('FD00::0001')).toBe('fd00::1');
    expect(hasHostBits(parseCidr('10.9.0.0/16'))).toBe(false);
    expect(hasHostBits(parseCidr('10.9.0.1/16'))).toBe(true);
    expect(prefixContains(parseCidr('10.0.0.0/24'), parseIp('10.0.0.254'))).toBe(true);
    expect(prefixContains(parseCidr('10.0.0.0/24'), parseIp('10.0.1.1'))).toBe(false);
    expect(prefixContains(parseCidr('10.0.0.0/24'), parseIp('fd00::1'))).toBe(false);
    expect(prefixContains(parseCidr('0.0.0.0/0'), parseIp('192.0.2.1'))).toBe(true);
  });

  it('parses and formats MAC addresses; errors name the value', () => {
    expect(canonicalMac('02:AB:00:00:00:01')).toBe('02:ab:00:00:00:01');
    expect([...parseMac('02-00-00-00-00-ff')]).toEqual([2, 0, 0, 0, 0, 255]);
    try {
      parseMac('zz:00');
      expect.unreachable();
    } catch (err) {
      expect(isOpdbusError(err, 'OPDBUS_ERR_NETLINK_INVALID')).toBe(true);
      expect((err as Error).message).toContain('"zz:00" is not a hardware address');
    }
    try {
      parseIp('10.0.0.300', 'a gateway');
      expect.unreachable();
    } catch (err) {
      expect(isOpdbusError(err, 'OPDBUS_ERR_NETLINK_INVALID')).toBe(true);
      expect((err as Error).message).toContain('"10.0.0.300" is not a gateway');
    }
  });
});
