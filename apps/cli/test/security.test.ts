// Hostile input at every entry point of the CLI: a document, a command-line argument or a file
// name that would reach outside its territory is refused early, with the exit code of invalid
// input (or "not found" / "unavailable" where that is what it is), naming what was wrong, and
// nothing outside is read (its content never printed) or written.
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { limits } from '@opdbus/core';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { describeIf, requirement } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');

let dir: string;
let victim: string;
const secret = `SECRET${process.pid}${Math.random().toString(16).slice(2, 10)}`;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'opdbus-cli-security-'));
  victim = join(dir, 'victim');
  await writeFile(victim, secret);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cli = (...args: string[]) => runCli(['--state-dir', join(dir, 'state'), ...args]);
const docFile = async (name: string, text: string): Promise<string> => {
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
};
const sysctlDoc = (key: string, value = 'PWNED') =>
  `version: 1\nplugins:\n  sysctl:\n    ${JSON.stringify(key)}: ${JSON.stringify(value)}\n`;

describeIf(asRoot, 'sysctl keys that walk out of /proc/sys (root)', () => {
  let netns: SandboxNetns;
  beforeAll(async () => {
    netns = await createNetns();
  });
  afterAll(async () => {
    await netns?.destroy();
  });

  const keys = (file: string) => [
    `net/../../..${file}`,
    `kernel/../../..${file}`,
    `net.ipv4/../../../..${file}`,
    `net.//.//.//.${file.slice(1).replaceAll('/', '.')}`,
    `/proc/sys/net/../../..${file}`,
  ];

  for (const where of ['host', 'netns'] as const) {
    for (const command of ['diff', 'apply'] as const) {
      it(`are refused at validation: ${command} on the ${where}`, async () => {
        for (const key of keys(victim)) {
          const file = await docFile('evil.yaml', sysctlDoc(key));
          const result = await cli(...(where === 'netns' ? ['--netns', netns.name] : []), command, file);
          expect(result.code, `${key}: ${result.stderr}`).toBe(3);
          expect(result.stderr).toContain('OPDBUS_ERR_STATE_INVALID');
          expect(result.stderr).toContain(JSON.stringify(key));
          expect(result.stdout + result.stderr).not.toContain(secret);
          expect(await readFile(victim, 'utf8')).toBe(secret);
        }
      });
    }
  }
});

describe('hostile documents', () => {
  it('a YAML alias bomb is a parse error of that file (exit 3)', async () => {
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 8; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const file = await docFile('bomb.yaml', `version: 1\n${levels.join('\n')}\nplugins: {}\n`);
    const result = await cli('diff', file);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`${file} is not a valid state document`);
    expect(result.stderr).toContain('OPDBUS_ERR_STATE_PARSE');
    expect(result.stderr).not.toMatch(/internal error|ReferenceError/);
  });

  it('100 000-deep JSON is "too deep" (exit 3)', async () => {
    const file = await docFile(
      'deep.json',
      `{"version":1,"plugins":{"sysctl":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`,
    );
    const result = await cli('diff', file);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('too deep');
    expect(result.stderr).not.toContain('Maximum call stack');
  });

  it('a document over the size limit is refused before it is read, from a file or stdin, without echoing it', async () => {
    const big = sysctlDoc('kernel.core_pattern', 'x'.repeat(limits.documentBytes));
    const file = await docFile('big.yaml', big);
    const result = await cli('diff', file);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('OPDBUS_ERR_LIMIT_EXCEEDED');
    expect(result.stderr.length).toBeLessThan(1000);
    const piped = await runCli(['--state-dir', join(dir, 'state'), 'diff', '-'], { input: big });
    expect(piped.code).toBe(3);
    expect(piped.stderr).toContain('<stdin>: the state document has more than');
  });

  it('a sysctl value larger than a page is refused, naming the key, without echoing it', async () => {
    const file = await docFile('value.yaml', sysctlDoc('kernel.core_pattern', 'y'.repeat(100_000)));
    const result = await cli('diff', file);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('plugins.sysctl["kernel.core_pattern"]: a sysctl value fits one page');
    expect(result.stderr).not.toContain('y'.repeat(200));
  });

  it('an interface name is counted in bytes', async () => {
    const file = await docFile(
      'if.yaml',
      'version: 1\nplugins:\n  network:\n    links:\n      - { name: "ethééééééé", kind: bridge }\n',
    );
    const result = await cli('diff', file);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('at most 15 bytes; this one has 17');
  });
});

describe('names from the command line', () => {
  it('--netns must name a namespace: no paths in names, no files that are not namespaces', async () => {
    const file = await docFile('ok.yaml', sysctlDoc('net.ipv4.ip_forward', '1'));
    const traversal = await cli('--netns', '../../../etc', 'diff', file);
    expect(traversal.code).toBe(4);
    expect(traversal.stderr).toContain('is not a network namespace name');
    const notNs = await cli('--netns', victim, 'diff', file);
    expect(notNs.code).toBe(4);
    expect(notNs.stderr).toContain('is not a network namespace file');
    expect(notNs.stdout + notNs.stderr).not.toContain(secret);
  });

  it('transaction and snapshot ids are ids, never paths', async () => {
    await mkdir(join(dir, 'state', 'transactions'), { recursive: true });
    for (const args of [
      ['confirm', '../../../../etc/passwd'],
      ['rollback', '../victim'],
      ['snapshot', 'restore', '../../victim'],
    ]) {
      const result = await cli(...args);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(8);
      expect(result.stderr).toMatch(/is not a (transaction|snapshot) id/);
      expect(result.stdout + result.stderr).not.toContain(secret);
    }
  });

  it('exports never write through a link or into a device', async () => {
    const link = join(dir, 'export-link.json');
    await symlink(victim, link);
    const state = join(dir, 'export-state');
    // A ledger of one entry to export (the ledger commands only read).
    const { Ledger } = await import('@opdbus/ledger');
    const ledger = await Ledger.open({
      dir: join(state, 'ledger'),
      keyFile: join(state, 'keys', 'ledger.key'),
      origin: 'security-test/opdbus',
    });
    await ledger.append({ v: 2, kind: 'note' });
    await ledger.close();
    expect((await runCli(['--state-dir', state, 'ledger', 'checkpoint'])).code).toBe(0);
    for (const target of [link, '/dev/null']) {
      const bundle = await runCli(['--state-dir', state, 'ledger', 'export', target]);
      expect(bundle.code, bundle.stderr).toBe(3);
      expect(bundle.stderr).toContain('OPDBUS_ERR_PATH_UNSAFE');
    }
    expect(await readFile(victim, 'utf8')).toBe(secret);
  });

  it('codegen: an OVSDB schema cannot name a file outside --out', async () => {
    const schema = (name: string) =>
      JSON.stringify({ name, version: '1.0.0', tables: { T: { columns: { c: { type: 'string' } } } } });
    const out = join(dir, 'gen');
    const evil = await cli(
      'codegen',
      'ovsdb',
      await docFile('evil.ovsschema', schema('../../../../tmp/evil')),
      '--out',
      out,
    );
    expect(evil.code).toBe(3);
    expect(evil.stderr).toContain('name: expected an identifier');
    const fine = await cli(
      '--json',
      'codegen',
      'ovsdb',
      await docFile('ok.ovsschema', schema('Open_vSwitch_Test')),
      '--out',
      out,
    );
    expect(fine.code, fine.stderr).toBe(0);
    expect(await readdir(out)).toEqual(['openVSwitchTest.ts']);
  });
});

describe('the commit-confirmed watchdog', () => {
  it('survives its parent going away during the start handshake', async () => {
    const { spawn } = await import('node:child_process');
    const { cliBin } = await import('./helpers.js');
    const state = join(dir, 'watchdog-state');
    await mkdir(join(state, 'transactions'), { recursive: true });
    for (let round = 0; round < 5; round++) {
      // The parent's end of the IPC channel closes before the watchdog can say "ready", as when
      // the CLI is killed right after starting it.
      const child = spawn(
        process.execPath,
        [cliBin, '--state-dir', state, '__watchdog', '20990101T000000.000Z-abcdef'],
        { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
      );
      child.disconnect();
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      // Before, an unhandled ERR_IPC_CHANNEL_CLOSED 'error' event killed it (exit 1); now the
      // closed channel is only logged as a warning.
      expect(stderr).not.toMatch(/Unhandled 'error' event|internal error/);
      // It went on to look at its transaction (there is none here: exit 8, not found).
      expect(code, stderr).toBe(8);
      expect(stderr).toContain('20990101T000000.000Z-abcdef');
    }
  });
});
