import { describe, expect, it } from 'vitest';
import { isOpdbusError } from '@opdbus/core';
import { Policy } from './policy.js';

describe('Policy', () => {
  it('is read-only by default: read tools allowed, write tools denied', () => {
    const policy = Policy.readOnly();
    expect(policy.decide('query', [{ plugin: 'sysctl' }]).action).toBe('allow');
    expect(policy.decide('ledger_verify', []).action).toBe('allow');
    const apply = policy.decide('apply', [
      { plugin: 'sysctl', resource: 'net.ipv4.ip_forward', risky: false },
    ]);
    expect(apply.action).toBe('deny');
    expect(apply.reason).toMatch(/default for write tools is deny/);
  });

  it('takes the first matching rule per change and the strictest over the plan', () => {
    const policy = Policy.parse(
      `version: 1
rules:
  - { tools: apply, risky: true, action: deny, reason: risky changes need a maintenance window }
  - { tools: [apply, rollback], plugins: sysctl, resources: "net.ipv4.*", action: allow }
  - { tools: apply, plugins: [sysctl, network], action: ask }
`,
      'policy.yaml',
    );
    const forward = { plugin: 'sysctl', resource: 'net.ipv4.ip_forward', risky: false };
    expect(policy.decide('apply', [forward]).action).toBe('allow');
    const other = { plugin: 'sysctl', resource: 'kernel.pid_max', risky: false };
    expect(policy.decide('apply', [forward, other]).action).toBe('ask');
    const risky = { plugin: 'network', resource: 'link/eth0', risky: true };
    const decision = policy.decide('apply', [forward, other, risky]);
    expect(decision).toMatchObject({ action: 'deny', by: [0] });
    expect(decision.reason).toContain('maintenance window');
    // confirm is not named by any rule: the default for write tools.
    expect(policy.decide('confirm', [forward]).action).toBe('deny');
    expect(policy.decide('rollback', [forward]).action).toBe('allow');
  });

  it('can deny a read tool or a resource', () => {
    const policy = Policy.parse(
      `version: 1
defaults: { write: ask }
rules:
  - { tools: resource, resources: "opdbus://state/sessions", action: deny }
  - { tools: query, plugins: sessions, action: deny }
`,
      'p.yaml',
    );
    expect(policy.decide('resource', [{ resource: 'opdbus://state/sessions' }]).action).toBe('deny');
    expect(policy.decide('resource', [{ resource: 'opdbus://state/sysctl' }]).action).toBe('allow');
    expect(policy.decide('query', [{ plugin: 'sysctl' }, { plugin: 'sessions' }]).action).toBe('deny');
    expect(policy.decide('apply', [{ plugin: 'sysctl', resource: 'x' }]).action).toBe('ask');
  });

  it('refuses a bad file with the file, the path and what is wrong', () => {
    const bad = () =>
      Policy.parse(
        `version: 1\nrules:\n  - { tools: aply, action: allow }\n  - { action: maybe }\n`,
        'bad.yaml',
      );
    expect(bad).toThrow(/bad\.yaml: rules\[0\]\.tools.*unknown tool/s);
    expect(bad).toThrow(/bad\.yaml: rules\[1\]\.action/);
    try {
      bad();
    } catch (err) {
      expect(isOpdbusError(err, 'OPDBUS_ERR_MCP_POLICY_FILE')).toBe(true);
    }
    expect(() => Policy.parse('version: 2\n', 'v.yaml')).toThrow(/v\.yaml: version/);
    expect(() => Policy.parse('rules: [', 'y.yaml')).toThrow(/y\.yaml is not valid YAML/);
    expect(() => Policy.load('/nonexistent/policy.yaml')).toThrow(
      /Cannot read the policy file \/nonexistent/,
    );
  });
});
