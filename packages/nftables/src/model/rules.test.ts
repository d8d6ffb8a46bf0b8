import { describe, expect, it } from 'vitest';
import { compileRule, decompileRule, normalizeRule, syntheticInterfaces } from './rules.js';
import { ruleText } from './format.js';
import type { Rule } from './types.js';

const accept = { type: 'immediate', dreg: 0, verdict: { code: 'accept' } };

describe('compileRule', () => {
  it('adds the protocol dependencies nft adds', () => {
    expect(compileRule({ match: { tcp: { dport: 22 } }, verdict: 'accept' }, { family: 'inet' })).toEqual([
      { type: 'meta', key: 'l4proto', dreg: 1 },
      { type: 'cmp', sreg: 1, op: 'eq', data: '06' },
      { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 1 },
      { type: 'cmp', sreg: 1, op: 'eq', data: '0016' },
      accept,
    ]);
    // ip saddr in an inet table: meta nfproto ipv4 first; a /8 loads one byte.
    expect(
      compileRule({ match: { ip: { saddr: '10.0.0.0/8' } }, verdict: 'accept' }, { family: 'inet' }),
    ).toEqual([
      { type: 'meta', key: 'nfproto', dreg: 1 },
      { type: 'cmp', sreg: 1, op: 'eq', data: '02' },
      { type: 'payload', base: 'network', offset: 12, len: 1, dreg: 1 },
      { type: 'cmp', sreg: 1, op: 'eq', data: '0a' },
      accept,
    ]);
    // ... and none in an ip table; a /10 loads all and masks.
    expect(compileRule({ match: { ip: { daddr: '10.64.0.0/10' } } }, { family: 'ip' })).toEqual([
      { type: 'payload', base: 'network', offset: 16, len: 4, dreg: 1 },
      { type: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: 'ffc00000', xor: '00000000' },
      { type: 'cmp', sreg: 1, op: 'eq', data: '0a400000' },
    ]);
  });

  it('writes lists as anonymous sets, ranges as gte/lte and negated ranges as range neq', () => {
    const exprs = compileRule({ match: { tcp: { dport: [443, 80] } }, verdict: 'accept' }, { family: 'ip' });
    expect(exprs[3]).toMatchObject({
      type: 'lookup',
      anonymous: { flags: 0, keyType: 13, keyLen: 2, elements: [{ key: '01bb' }, { key: '0050' }] },
    });
    expect(compileRule({ match: { tcp: { dport: '1000-2000' } } }, { family: 'ip' }).slice(3)).toEqual([
      { type: 'cmp', sreg: 1, op: 'gte', data: '03e8' },
      { type: 'cmp', sreg: 1, op: 'lte', data: '07d0' },
    ]);
    expect(compileRule({ match: { tcp: { dport: { not: '1000-2000' } } } }, { family: 'ip' })[3]).toEqual({
      type: 'range',
      sreg: 1,
      op: 'neq',
      from: '03e8',
      to: '07d0',
    });
    // An interval list: start and end elements.
    const set = compileRule({ match: { ip: { saddr: ['10.0.0.0/8', '192.168.1.1'] } } }, { family: 'ip' })[1];
    expect(set).toMatchObject({
      anonymous: {
        flags: 4,
        elements: [
          { key: '0a000000' },
          { key: '0b000000', flags: 1 },
          { key: 'c0a80101' },
          { key: 'c0a80102', flags: 1 },
        ],
      },
    });
  });

  it('resolves iif names and refuses what cannot be encoded', () => {
    const interfaces = { index: (n: string) => (n === 'lo' ? 1 : undefined), name: () => undefined };
    expect(compileRule({ match: { iif: 'lo' } }, { family: 'inet', interfaces })[1]).toEqual({
      type: 'cmp',
      sreg: 1,
      op: 'eq',
      data: '01000000',
    });
    const bad: [Rule, RegExp][] = [
      [{ match: { iif: 'nope0' } }, /there is no interface nope0/],
      [{ match: { ip6: { saddr: '::1' } } }, /needs ipv6, but the table's family is ip/],
      [{ match: { tcp: { dport: 70000 } } }, /not a valid port/],
      [{ match: { ip: { saddr: '10.0.0.300' } } }, /not an IPv4 address/],
      [{ match: { tcp: { dport: 22 }, udp: { dport: 53 } } }, /two transport protocols/],
      [{ match: { ct: { state: 'sleepy' } } }, /not a conntrack state/],
      [{ statements: [{ dnat: { to: '10.0.0.1:80' } }] }, /needs a transport protocol match/],
    ];
    for (const [rule, message] of bad)
      expect(() => compileRule(rule, { family: 'ip', interfaces })).toThrow(message);
  });
});

describe('normalizeRule', () => {
  const cases: [string, Rule, Rule][] = [
    [
      'drops implied dependencies and names services',
      { match: { l4proto: 'tcp', tcp: { dport: 'ssh' } }, verdict: 'accept' },
      { match: { tcp: { dport: 22 } }, verdict: 'accept' },
    ],
    [
      'sorts and deduplicates lists',
      { match: { tcp: { dport: [443, 80, 80] } } },
      { match: { tcp: { dport: [80, 443] } } },
    ],
    [
      'masks host bits of prefixes',
      { match: { ip: { saddr: '10.1.2.3/8' } } },
      { match: { ip: { saddr: '10.0.0.0/8' } } },
    ],
    [
      'writes /32 as an address',
      { match: { ip: { saddr: '10.1.2.3/32' } } },
      { match: { ip: { saddr: '10.1.2.3' } } },
    ],
    [
      'canonical IPv6',
      { match: { ip6: { daddr: 'FD00:0:0::1' } } },
      { match: { ip6: { daddr: 'fd00::1' } } },
    ],
    [
      'ct state flags in nft order',
      { match: { ct: { state: 'related,established' } } },
      { match: { ct: { state: 'established,related' } } },
    ],
    ['protocol numbers as names', { match: { l4proto: 58 } }, { match: { l4proto: 'ipv6-icmp' } }],
    ['mark as a number', { match: { mark: '0x10' } }, { match: { mark: 16 } }],
    [
      'a tcp reset needs tcp',
      { verdict: { reject: { type: 'tcp-reset' } } },
      { match: { l4proto: 'tcp' }, verdict: { reject: { type: 'tcp-reset' } } },
    ],
    [
      'the default reject',
      { verdict: { reject: { type: 'icmpx', code: 'port-unreachable' } } },
      { verdict: 'reject' },
    ],
    ['log without options', { statements: [{ log: {} }] }, { statements: ['log'] }],
    [
      'log level warn is the default',
      { statements: [{ log: { prefix: 'x ', level: 'warn' } }] },
      { statements: [{ log: { prefix: 'x ' } }] },
    ],
    [
      'limit burst 5 is the default',
      { statements: [{ limit: { rate: 10, per: 'second', burst: 5 } }] },
      { statements: [{ limit: { rate: 10, per: 'second' } }] },
    ],
    [
      'limit in bytes',
      { statements: [{ limit: { rate: 2048, per: 'minute', unit: 'bytes' } }] },
      { statements: [{ limit: { rate: 2, per: 'minute', unit: 'kbytes' } }] },
    ],
    [
      'keeps the name',
      { name: 'web', match: { tcp: { dport: 80 } }, statements: ['counter'], verdict: 'accept' },
      { name: 'web', match: { tcp: { dport: 80 } }, statements: ['counter'], verdict: 'accept' },
    ],
    [
      'nat with ports',
      { match: { tcp: { dport: 8080 } }, statements: [{ dnat: { to: '10.0.0.2:80' } }] },
      { match: { tcp: { dport: 8080 } }, statements: [{ dnat: { to: '10.0.0.2:80' } }] },
    ],
    [
      'IPv6 dnat',
      { match: { tcp: { dport: 8080 } }, statements: [{ dnat: { to: '[fd00::2]:80' } }] },
      { match: { tcp: { dport: 8080 } }, statements: [{ dnat: { to: '[fd00::2]:80' } }] },
    ],
    [
      'iif by name',
      { match: { iif: 'eth0', oifname: 'wg*' }, verdict: { jump: 'fwd' } },
      { match: { iif: 'eth0', oifname: 'wg*' }, verdict: { jump: 'fwd' } },
    ],
    [
      'icmp with a set',
      { match: { icmp: { type: ['echo-request', 'echo-reply'] } }, verdict: 'accept' },
      { match: { icmp: { type: ['echo-reply', 'echo-request'] } }, verdict: 'accept' },
    ],
    [
      'negated named set',
      { match: { ip6: { saddr: { not: '@allowed6' } } }, verdict: 'drop' },
      { match: { ip6: { saddr: { not: '@allowed6' } } }, verdict: 'drop' },
    ],
  ];
  it.each(cases)('%s', (_what, rule, expected) => {
    expect(normalizeRule(rule, 'inet')).toEqual(expected);
    // A fixpoint.
    expect(normalizeRule(expected, 'inet')).toEqual(expected);
  });

  it('keeps what it cannot read as exact expressions, and writes them back unchanged', () => {
    const fib = [{ type: 'unknown' as const, name: 'fib', data: '0800010000000001' }, accept] as Rule['expr'];
    const ctx = { family: 'inet' as const, interfaces: syntheticInterfaces() };
    const read = decompileRule(fib!, ctx);
    expect(read).toEqual({ expr: fib });
    expect(compileRule(read, ctx)).toEqual(fib);
  });

  it('renders rules as nft lists them', () => {
    expect(
      ruleText(
        normalizeRule(
          {
            name: 'ssh',
            match: { ip: { saddr: '10.0.0.0/8' }, tcp: { dport: 22 }, ct: { state: 'new' } },
            statements: ['counter'],
            verdict: 'accept',
          },
          'inet',
        ),
      ),
    ).toBe('ip saddr 10.0.0.0/8 tcp dport 22 ct state new counter accept comment "ssh"');
  });
});
