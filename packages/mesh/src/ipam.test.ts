import { describe, expect, it } from 'vitest';
import { allocateAddress } from './ipam.js';

describe('allocateAddress', () => {
  it('gives the lowest free host address, skipping network and broadcast', () => {
    expect(allocateAddress('10.99.0.0/24', [])).toBe('10.99.0.1');
    expect(allocateAddress('10.99.0.0/24', ['10.99.0.1', '10.99.0.2'])).toBe('10.99.0.3');
    expect(allocateAddress('fd99::/64', ['fd99::1'])).toBe('fd99::2');
  });

  it('reuses the address of a removed node only when nothing else is left', () => {
    expect(allocateAddress('10.99.0.0/30', [], ['10.99.0.1'])).toBe('10.99.0.2');
    expect(allocateAddress('10.99.0.0/30', ['10.99.0.2'], ['10.99.0.1'])).toBe('10.99.0.1');
    expect(() => allocateAddress('10.99.0.0/30', ['10.99.0.1', '10.99.0.2'])).toThrow(
      /pool 10\.99\.0\.0\/30 has no free address left/,
    );
  });
});
