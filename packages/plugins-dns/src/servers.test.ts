import { describe, expect, it } from 'vitest';
import { canonicalServer, parseServer } from './servers.js';

describe('DNS server text', () => {
  it('round-trips the forms resolvectl prints', () => {
    for (const text of [
      '192.0.2.53',
      '192.0.2.53:5353',
      '1.1.1.1#cloudflare-dns.com',
      '2001:db8::53',
      '[2001:db8::53]:853#dns.example',
      '::1',
      'fe80::1:2',
    ])
      expect(canonicalServer(text)).toBe(text);
  });
  it('canonicalises IPv6 (RFC 5952) and embedded IPv4', () => {
    expect(canonicalServer('2001:0db8:0000:0000:0000:0000:0000:0053')).toBe('2001:db8::53');
    // IPv4-mapped addresses stay dotted, as inet_ntop (and so resolvectl) prints them.
    expect(canonicalServer('::ffff:192.0.2.1')).toBe('::ffff:192.0.2.1');
    expect(canonicalServer('::ffff:c000:201')).toBe('::ffff:192.0.2.1');
    expect(canonicalServer('[2001:db8:0:0:1:0:0:1]:53')).toBe('[2001:db8::1:0:0:1]:53');
  });
  it('says why a server does not parse', () => {
    expect(parseServer('dns.example')).toBe('dns.example is not an IP address');
    expect(parseServer('[192.0.2.1]:53')).toBe('[192.0.2.1] is not an IPv6 address');
    expect(parseServer('192.0.2.1:70000')).toBe('port 70000 is out of range');
    expect(parseServer('192.0.2.1#bad name')).toBe('the name after # is not a host name');
  });
});
