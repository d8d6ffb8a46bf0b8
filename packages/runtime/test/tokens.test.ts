import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TokenFile } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'opdbus-tokens-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string, mode = 0o600): string {
  const path = join(dir, `t${n++}`);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

describe('TokenFile', () => {
  it('reads bare, scoped and named tokens; read is the default scope', () => {
    const path = file(
      '# tokens\nAAAAAAAAAAAAAAAAAAAAAAAA\nBBBBBBBBBBBBBBBB write ci\n\nCCCCCCCCCCCCCCCC read grafana\n',
    );
    const tokens = TokenFile.load(path);
    expect(tokens.size).toBe(3);
    expect(tokens.check('AAAAAAAAAAAAAAAAAAAAAAAA')).toEqual({ name: `${path}:2`, scope: 'read' });
    expect(tokens.check('BBBBBBBBBBBBBBBB')).toEqual({ name: 'ci', scope: 'write' });
    expect(tokens.check('BBBBBBBBBBBBBBB')).toBeUndefined();
    expect(tokens.check('')).toBeUndefined();
    expect(JSON.stringify(tokens.identities())).not.toContain('BBBB');
  });

  it('scopes: write includes read, read is not write', () => {
    expect(TokenFile.allows({ name: 'a', scope: 'write' }, 'read')).toBe(true);
    expect(TokenFile.allows({ name: 'a', scope: 'read' }, 'write')).toBe(false);
  });

  it('parses only a well-formed Bearer header', () => {
    expect(TokenFile.bearer('Bearer abc')).toBe('abc');
    expect(TokenFile.bearer('bearer abc ')).toBe('abc');
    expect(TokenFile.bearer('Basic abc')).toBeUndefined();
    expect(TokenFile.bearer('Bearer a b')).toBeUndefined();
    expect(TokenFile.bearer(undefined)).toBeUndefined();
  });

  it.each([
    ['a group-readable file', 'AAAAAAAAAAAAAAAA\n', 0o640, /readable by group or others.*chmod 600/],
    ['an empty file', '# nothing\n', 0o600, /holds no token/],
    ['a short token', 'short\n', 0o600, /line 1: a token must be at least 16/],
    ['a bad scope', 'AAAAAAAAAAAAAAAA admin\n', 0o600, /line 1: scope "admin"/],
    [
      'a name used twice',
      'AAAAAAAAAAAAAAAA read x\nBBBBBBBBBBBBBBBB write x\n',
      0o600,
      /line 2: the name "x"/,
    ],
    ['extra fields', 'AAAAAAAAAAAAAAAA read x y\n', 0o600, /line 1: too many fields/],
  ])('refuses %s, naming the file and line', (_what, text, mode, pattern) => {
    const path = file(text, mode);
    expect(() => TokenFile.load(path)).toThrow(pattern);
    try {
      TokenFile.load(path);
    } catch (err) {
      expect((err as { code: string }).code).toBe('OPDBUS_ERR_TOKEN_FILE');
      expect((err as Error).message.startsWith(path)).toBe(true);
    }
  });

  it('refuses a missing file', () => {
    expect(() => TokenFile.load(join(dir, 'missing'))).toThrow(/cannot be read/);
  });
});
