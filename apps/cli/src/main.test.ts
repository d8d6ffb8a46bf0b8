import { describe, expect, it } from 'vitest';
import { buildProgram } from './main.js';

const quiet = { out: (): void => undefined, err: (): void => undefined };
const subcommands = (argv: readonly string[] | undefined, group: string): string[] =>
  buildProgram(quiet, () => undefined, argv)
    .commands.find((c) => c.name() === group)!
    .commands.map((c) => c.name());

describe('buildProgram', () => {
  it('builds the subcommands of the group the arguments run, and only those', () => {
    expect(subcommands(['--state-dir', '/tmp/s', 'ledger', 'verify'], 'ledger')).toContain('verify');
    expect(subcommands(['--state-dir', '/tmp/s', 'ledger', 'verify'], 'mesh')).toEqual([]);
    expect(subcommands(['--netns', 'ns1', 'query', '--plugin', 'network'], 'ledger')).toEqual([]);
    // A global option's value that is a group's name is not the command.
    expect(subcommands(['--state-dir', 'mesh', 'query'], 'mesh')).toEqual([]);
    expect(subcommands(['--json', 'mesh', 'status'], 'mesh')).toContain('status');
  });

  it('builds every group for `help` and without the arguments', () => {
    expect(subcommands(['help', 'mesh'], 'mesh')).toContain('init');
    expect(subcommands(['help'], 'snapshot')).toContain('list');
    expect(subcommands(undefined, 'ledger')).toContain('verify');
    // A group's own options and description are there either way (`opdbus --help` lists them).
    const numa = buildProgram(quiet, () => undefined, ['query']).commands.find((c) => c.name() === 'numa')!;
    expect(numa.options.length).toBeGreaterThan(0);
    expect(numa.description()).not.toBe('');
  });
});
