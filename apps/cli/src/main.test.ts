import { describe, expect, it } from 'vitest';
import { commandOf } from './commandLine.js';
import { buildProgram, commandLineOf } from './main.js';

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

describe('commandLineOf', () => {
  it('gives the launcher every command with its aliases, and the global options that take a value', () => {
    const program = buildProgram(quiet, () => undefined);
    const line = commandLineOf(program);
    for (const command of program.commands) {
      expect(line.commands[command.name()]).toBe(command.name());
      for (const alias of command.aliases()) expect(line.commands[alias]).toBe(command.name());
    }
    expect(line.valued).toEqual(
      expect.arrayContaining(['--netns', '--state-dir', '--plugin', '--log-level']),
    );
    expect(line.valued).not.toContain('--json');
    // The launcher finds the command where the program does.
    expect(commandOf(['--state-dir', 'query', '--json', 'diff', 'doc.yaml'], line)).toBe('diff');
  });
});
