import { describe, expect, it } from 'vitest';
import { ModePolicy, parseModeRule } from './modes.js';

describe('ModePolicy', () => {
  it('picks the most specific rule: exact key, then the longest pattern, then the plugin, then the default', () => {
    const policy = new ModePolicy('enforce', [
      { pattern: 'network', mode: 'observe' },
      { pattern: 'network:link/br-*', mode: 'ignore' },
      { pattern: 'network:link/br-lab*', mode: 'enforce' },
      { pattern: 'network:link/br-lab2', mode: 'observe' },
    ]);
    expect(policy.of('sysctl', 'net.ipv4.ip_forward')).toBe('enforce');
    expect(policy.of('network', 'address/eth0/10.0.0.1/24')).toBe('observe');
    expect(policy.of('network', 'link/br-x')).toBe('ignore');
    expect(policy.of('network', 'link/br-lab1')).toBe('enforce');
    expect(policy.of('network', 'link/br-lab2')).toBe('observe');
    expect(policy.ignoresPlugin('network')).toBe(false);
    expect(new ModePolicy('observe', [{ pattern: 'ovs', mode: 'ignore' }]).ignoresPlugin('ovs')).toBe(true);
  });

  it('parses PATTERN=MODE and refuses anything else with what to write', () => {
    expect(parseModeRule('network:link/br0=observe')).toEqual({
      pattern: 'network:link/br0',
      mode: 'observe',
    });
    expect(() => parseModeRule('network:link/br0=fight')).toThrow(/PATTERN=MODE/);
    expect(() => new ModePolicy('observe', [{ pattern: 'Bad Plugin', mode: 'observe' }])).toThrow(
      /PLUGIN:RESOURCE/,
    );
  });
});
