import { describe, expect, it } from 'vitest';
import { commandIndex, commandOf, type CommandLine } from './commandLine.js';

const line: CommandLine = {
  commands: { query: 'query', diff: 'diff', transactions: 'transactions', tx: 'transactions' },
  valued: ['--netns', '--state-dir', '-c'],
};

describe('commandIndex', () => {
  it('skips global options and the values of those that take one', () => {
    const valued = new Set(line.valued);
    expect(commandIndex(valued, ['query'])).toBe(0);
    expect(commandIndex(valued, ['--netns', 'ns1', '--json', 'query', '--plugin', 'x'])).toBe(3);
    expect(commandIndex(valued, ['--netns=ns1', 'query'])).toBe(1);
    expect(commandIndex(valued, ['-c', 'f', 'diff', 'doc.yaml'])).toBe(2);
    expect(commandIndex(valued, ['--', 'query'])).toBe(0);
    expect(commandIndex(valued, ['--json'])).toBe(1);
  });
});

describe('commandOf', () => {
  it('names the command the arguments run, an alias by its command', () => {
    expect(commandOf(['--state-dir', 'query', 'diff'], line)).toBe('diff');
    expect(commandOf(['--netns', 'diff', 'query'], line)).toBe('query');
    expect(commandOf(['tx', 'list'], line)).toBe('transactions');
  });

  it('is `other` for help, version, no command and a command it does not know', () => {
    for (const argv of [[], ['--help'], ['-V'], ['help', 'query'], ['qurey'], ['constructor'], ['__proto__']])
      expect(commandOf(argv, line)).toBe('other');
  });
});
