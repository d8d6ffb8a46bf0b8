import { describe, expect, it } from 'vitest';
import { optionProblem, parseKeyLine, renderKeyLine, splitOptions } from './keys.js';
import { parseDropin, renderDropin, type SshdSettings } from './sshd.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKx1c0mE1dlx0Lh4S2ZbS4lgE3x2y3lCm4kZB9o3bUGT';

describe('authorized_keys lines (sshd(8) format)', () => {
  it('parses options with quoted commas and spaces, and renders the same line back', () => {
    const line = `from="10.0.0.0/8,192.168.1.*",command="echo \\"hi there\\"",no-pty ${KEY} me@host`;
    const parsed = parseKeyLine(line)!;
    expect(parsed.options).toEqual([
      'from="10.0.0.0/8,192.168.1.*"',
      'command="echo \\"hi there\\""',
      'no-pty',
    ]);
    expect(parsed.type).toBe('ssh-ed25519');
    expect(parsed.comment).toBe('me@host');
    expect(parsed.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(renderKeyLine(parsed)).toBe(line);
  });

  it('leaves comments, blank lines and broken keys unparsed', () => {
    expect(parseKeyLine('# comment')).toBeUndefined();
    expect(parseKeyLine('')).toBeUndefined();
    expect(parseKeyLine('ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ')).toBeUndefined(); // an RSA blob under another type
    expect(splitOptions('from="a,b')).toBeUndefined();
  });

  it('checks options by name and value', () => {
    expect(optionProblem('no-pty')).toBeUndefined();
    expect(optionProblem('from="10.0.0.1"')).toBeUndefined();
    expect(optionProblem('from')).toMatch(/needs a value/);
    expect(optionProblem('no-pty="x"')).toMatch(/takes no value/);
    expect(optionProblem('evil-option')).toMatch(/unknown key option/);
    expect(optionProblem('command="a"b"')).toMatch(/NAME="VALUE"/);
  });
});

describe('the sshd drop-in', () => {
  it('renders typed settings and reads them back identically', () => {
    const settings: SshdSettings = {
      PasswordAuthentication: false,
      PermitRootLogin: 'prohibit-password',
      MaxAuthTries: 3,
      AllowUsers: ['alice', 'bob@10.0.0.*'],
      Port: [22, 2222],
    };
    const text = renderDropin(settings);
    expect(text).toContain('PasswordAuthentication no\n');
    expect(text).toContain('Port 22\nPort 2222\n');
    expect(parseDropin(text)).toEqual({ settings, problems: [] });
  });

  it('reads keywords case-insensitively, with "=", first value winning, and reports what it does not manage', () => {
    const { settings, problems } = parseDropin(
      'passwordauthentication=no\nPasswordAuthentication yes\nMatch User x\nMaxAuthTries lots\n',
    );
    expect(settings).toEqual({ PasswordAuthentication: false });
    expect(problems.map((p) => p.line)).toEqual([3, 4]);
  });
});
