import { describe, expect, it } from 'vitest';
import {
  findTool,
  formatCommand,
  missingToolMessage,
  requireTool,
  runCommand,
  toolPackages,
} from './tools.js';

describe('tools', () => {
  it('names the Debian package of every program', () => {
    expect(toolPackages['dbus-daemon']).toBe('dbus');
    for (const tool of ['ovsdb-server', 'ovs-vswitchd', 'ovsdb-tool', 'ovs-vsctl', 'ovs-appctl'] as const)
      expect(toolPackages[tool]).toBe('openvswitch-switch');
    expect(toolPackages['mkfs.btrfs']).toBe('btrfs-progs');
    expect(missingToolMessage('ovs-vsctl')).toContain('apt-get install openvswitch-switch');
  });

  it('finds programs on PATH and in sbin, and reports missing ones', () => {
    expect(findTool('sh')).toMatch(/^\/.*\/sh$/);
    expect(findTool('opdbus-no-such-program')).toBeUndefined();
    expect(requireTool('mount')).toMatch(/\/mount$/);
  });

  it('runs a command and collects its output and exit code', async () => {
    const result = await runCommand('/bin/sh', ['-c', 'echo out; echo err >&2; exit 3']);
    expect(result).toEqual({ code: 3, signal: null, stdout: 'out\n', stderr: 'err\n' });
    await expect(runCommand('/nonexistent/program', [])).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('formats command lines for messages', () => {
    expect(formatCommand('ovs-vsctl', ['--db=unix:/tmp/a b', 'init'])).toBe(
      "ovs-vsctl '--db=unix:/tmp/a b' init",
    );
  });
});
