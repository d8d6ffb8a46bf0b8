import { describe, expect, it } from 'vitest';
import { interfaceNameProblem, isValidInterfaceName } from './names.js';

describe('interface names, as the kernel validates them', () => {
  it('counts bytes, not characters', () => {
    expect(isValidInterfaceName('eth0123456789ab')).toBe(true); // 15 bytes
    expect(interfaceNameProblem('eth0123456789abc')).toMatch(/at most 15 bytes; this one has 16/);
    // 10 characters, 17 bytes: the kernel refuses it.
    expect(interfaceNameProblem('ethééééééé')).toMatch(/at most 15 bytes; this one has 17 \(10 characters/);
  });

  it('refuses ".", "..", "/", ":", whitespace and the 0xA0 byte', () => {
    for (const bad of ['', '.', '..', 'a/b', 'eth0:1', 'a b', 'a\tb', 'a\nb', 'bà'])
      expect(isValidInterfaceName(bad), JSON.stringify(bad)).toBe(false);
    for (const good of ['...', 'br-lan', 'eth0.100', 'vlan@x', 'é1'])
      expect(isValidInterfaceName(good), good).toBe(true);
  });
});
