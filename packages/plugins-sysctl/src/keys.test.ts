import { describe, expect, it } from 'vitest';
import {
  interfaceOfKey,
  canonicalKey,
  comparableValue,
  isNamespacedKey,
  keyPath,
  printedValue,
  sysctlKeyProblem,
} from './keys.js';

describe('sysctl keys (as procps sysctl)', () => {
  it('keeps dotted keys and converts slashed ones', () => {
    expect(canonicalKey('net.ipv4.ip_forward')).toBe('net.ipv4.ip_forward');
    expect(canonicalKey('net/ipv4/ip_forward')).toBe('net.ipv4.ip_forward');
    expect(canonicalKey('/proc/sys/net/ipv4/ip_forward')).toBe('net.ipv4.ip_forward');
  });

  it('handles an interface name with a dot (VLAN) the way sysctl prints it', () => {
    expect(canonicalKey('net/ipv4/conf/eth0.100/forwarding')).toBe('net.ipv4.conf.eth0/100.forwarding');
    expect(canonicalKey('net.ipv4.conf.eth0/100.forwarding')).toBe('net.ipv4.conf.eth0/100.forwarding');
    expect(keyPath('net.ipv4.conf.eth0/100.forwarding')).toBe('/proc/sys/net/ipv4/conf/eth0.100/forwarding');
    expect(keyPath('net.ipv4.ip_forward', '/x')).toBe('/x/net/ipv4/ip_forward');
  });

  it('knows which keys a network namespace owns', () => {
    expect(isNamespacedKey('net.ipv4.ip_forward')).toBe(true);
    expect(isNamespacedKey('kernel.hostname')).toBe(false);
    expect(isNamespacedKey('netfoo.x')).toBe(false);
  });

  it('compares values field by field, whatever the whitespace', () => {
    expect(comparableValue('4096 131072  6291456')).toBe(comparableValue('4096\t131072\t6291456'));
    expect(comparableValue(1)).toBe(comparableValue('1\n'));
    expect(comparableValue('1')).not.toBe(comparableValue('01'));
    expect(printedValue('4096\t131072\t6291456\n')).toBe('4096\t131072\t6291456');
  });
});

describe('sysctlKeyProblem: a key names a file below /proc/sys and nothing else', () => {
  it('accepts real keys in both spellings', () => {
    for (const key of [
      'net.ipv4.ip_forward',
      'net/ipv4/ip_forward',
      'net.ipv4.conf.eth0/100.forwarding',
      'net/ipv4/conf/eth0.100/forwarding',
      'kernel.core_pattern',
      'net.ipv4.conf.br-lan.rp_filter',
    ])
      expect(sysctlKeyProblem(key), key).toBeUndefined();
  });

  it('refuses traversal in every spelling, empty components and absolute forms', () => {
    const cases: Array<[string, RegExp]> = [
      ['net/../../../etc/hostname', /"\.\." component/],
      ['kernel/../../../etc/shadow', /"\.\." component/],
      ['net.ipv4/../../../../etc/shadow', /empty component|"\." component/],
      ['net.//.//.//.etc.shadow', /"\.\." component/],
      ['net.ipv4.conf./.x', /"\." component/],
      ['net..ipv4', /empty component/],
      ['net.ipv4.', /empty component/],
      ['/proc/sys/net/ipv4/ip_forward', /starts with "\/"/],
      ['.net.ipv4.ip_forward', /starts with/],
      ['', /empty/],
      ['net.ipv4.ip forward', /letters, digits/],
      [`net.${'x'.repeat(300)}`, /at most 255/],
    ];
    for (const [key, problem] of cases) expect(sysctlKeyProblem(key), key).toMatch(problem);
  });
});

describe('interfaceOfKey', () => {
  it('names the interface of per-interface keys, and nothing else', () => {
    expect(interfaceOfKey('net.ipv4.conf.br0.forwarding')).toEqual({
      name: 'br0',
      directory: 'net.ipv4.conf',
    });
    expect(interfaceOfKey('net.ipv6.neigh.eth0/100.retrans_time_ms')).toEqual({
      name: 'eth0.100',
      directory: 'net.ipv6.neigh',
    });
    for (const key of [
      'net.ipv4.conf.all.forwarding',
      'net.ipv6.conf.default.disable_ipv6',
      'net.ipv4.ip_forward',
      'net.core.somaxconn',
      'kernel.ostype',
      'net.ipv4.route.flush',
    ])
      expect(interfaceOfKey(key), key).toBeUndefined();
  });
});
