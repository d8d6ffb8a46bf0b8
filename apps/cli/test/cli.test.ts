import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, type TransactionRecord } from '@opdbus/core';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCliUntil, waitForChange, waitForExit } from './helpers.js';
import { describeIf, requirement } from '@opdbus/sandbox/testing';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');
let ns: string;
let netns: SandboxNetns;
let dir: string;
let stateDir: string;
const sysctlIn = (...keys: string[]): string =>
  execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-n', ...keys], { encoding: 'utf8' });
const cli = (...args: string[]) => runCli(['--netns', ns, '--state-dir', stateDir, ...args]);
async function doc(name: string, body: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, body);
  return file;
}
const readRecord = async (txId: string): Promise<TransactionRecord> =>
  JSON.parse(await readFile(join(stateDir, 'transactions', `${txId}.json`), 'utf8')) as TransactionRecord;

describe('opdbus basics', () => {
  it('prints help and version, exit 0', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['query', 'diff', 'apply', 'confirm', 'rollback', 'schema', 'demo'])
      expect(help.stdout).toContain(command);
    for (const option of ['--netns', '--state-dir', '--bus', '--ovsdb', '--json'])
      expect(help.stdout).toContain(option);
    expect((await runCli(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('exits 3 on a usage error', async () => {
    const result = await runCli(['apply']);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain("missing required argument 'file'");
  });

  it('prints one JSON Schema for the whole document', async () => {
    const result = await runCli(['schema']);
    expect(result.code).toBe(0);
    const schema = JSON.parse(result.stdout) as {
      properties: { plugins: { properties: Record<string, unknown> } };
    };
    expect(Object.keys(schema.properties.plugins.properties)).toContain('sysctl');
  });
});

describeIf(asRoot, 'opdbus against a network namespace', () => {
  beforeAll(async () => {
    netns = await createNetns();
    ns = netns.name;
    dir = await mkdtemp(join(tmpdir(), 'opdbus-cli-'));
    stateDir = join(dir, 'state');
  });
  afterAll(async () => {
    await netns?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports an invalid document with file, line, path and exit 3', async () => {
    const file = await doc(
      'bad.yaml',
      'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_forward: [1]\n  sysclt: {}\n',
    );
    const result = await cli('diff', file);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`${file}:5:3: plugins.sysclt: unknown plugin "sysclt"`);
    const typed = await doc('bad2.yaml', 'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_forward: [1]\n');
    const r2 = await cli('--json', 'diff', typed);
    expect(r2.code).toBe(3);
    const body = JSON.parse(r2.stdout) as {
      error: { code: string; data: { issues: { path: string; line: number }[] } };
    };
    expect(body.error.code).toBe('OPDBUS_ERR_STATE_INVALID');
    expect(body.error.data.issues[0]).toMatchObject({
      path: 'plugins.sysctl["net.ipv4.ip_forward"]',
      line: 4,
    });
  });

  it('names file and path when a plugin refuses a key (exit 3)', async () => {
    const file = await doc(
      'badkey.yaml',
      'version: 1\nplugins:\n  sysctl:\n    net.ipv4.no_such_key: 1\n    kernel.hostname: x\n',
    );
    const result = await cli('diff', file);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(
      `${file}: plugins.sysctl["net.ipv4.no_such_key"]: no sysctl key net.ipv4.no_such_key`,
    );
    expect(result.stderr).toContain('OPDBUS_ERR_SYSCTL_UNKNOWN_KEY');
  });

  it('exits 4 for a namespace that does not exist', async () => {
    const file = await doc('ok.yaml', 'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_forward: 1\n');
    const result = await runCli(['--netns', 'opdbus-no-such-ns', '--state-dir', stateDir, 'diff', file]);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('OPDBUS_ERR_NETNS');
  });

  it('diff (exit 2) → apply → diff (exit 0), and query round-trips', async () => {
    const file = await doc(
      's1.yaml',
      'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_forward: 1\n    net.ipv4.tcp_rmem: 4096 65536 4194304\n',
    );
    const before = await cli('diff', file);
    expect(before.code).toBe(2);
    expect(before.stdout).toMatch(/2 change\(s\)/);
    const dry = await cli('apply', '--dry-run', file);
    expect(dry.code).toBe(2);
    expect(sysctlIn('net.ipv4.ip_forward')).toBe('0\n');
    const applied = await cli('apply', file);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/Verified/);
    expect(applied.stdout).toMatch(/Committed transaction/);
    expect(sysctlIn('net.ipv4.ip_forward', 'net.ipv4.tcp_rmem')).toBe('1\n4096\t65536\t4194304\n');
    const after = await cli('--json', 'diff', file);
    expect(after.code).toBe(0);
    expect(JSON.parse(after.stdout)).toMatchObject({ ok: true, changes: 0 });

    // The whole observed section, written back as a document, shows no change.
    const query = await cli('query', '--plugin', 'sysctl');
    expect(query.code).toBe(0);
    expect(query.stdout).toContain('net.ipv4.ip_forward: "1"');
    const roundTrip = await doc('query.yaml', query.stdout);
    const again = await cli('diff', roundTrip);
    expect(again.stdout).toContain('No changes');
    expect(again.code).toBe(0);
  });

  it('an unscoped query names what it could not reach (stderr, --json), and diffs clean', async () => {
    const none = [
      '--ovsdb',
      `unix:${join(dir, 'no-ovsdb.sock')}`,
      '--bus',
      `unix:path=${join(dir, 'no.bus')}`,
    ];
    const query = await cli(...none, 'query');
    expect(query.code, query.stderr).toBe(0);
    expect(query.stderr).toMatch(/ovs: not queried: there is no OVSDB socket at .*no-ovsdb\.sock/);
    expect(query.stderr).toMatch(/systemd: not queried: .*no\.bus/);
    expect(query.stdout).toContain('sysctl:');
    expect(query.stdout).not.toContain('net.core.rmem_max'); // read-only in a child namespace
    const json = await cli(...none, '--json', 'query');
    const body = JSON.parse(json.stdout) as { plugins: object; unavailable: Record<string, string> };
    expect(Object.keys(body.unavailable)).toEqual(expect.arrayContaining(['ovs', 'systemd', 'dbus']));
    expect(Object.keys(body.plugins)).toEqual(expect.arrayContaining(['sysctl', 'network']));
    const again = await cli(...none, 'diff', await doc('whole.yaml', query.stdout));
    expect(again.code, again.stdout + again.stderr).toBe(0);
    // --all adds what a document cannot set; such a document is refused at plan time.
    const all = await cli(...none, 'query', '--all', '--plugin', 'sysctl');
    expect(all.stdout).toContain('net.core.rmem_max');
    const refused = await cli(...none, 'diff', await doc('all.yaml', all.stdout));
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('OPDBUS_ERR_SYSCTL_READ_ONLY');
  });

  it('rolls back a failed apply (exit 5) and records it', async () => {
    const before = sysctlIn('net.ipv4.ip_default_ttl', 'net.core.somaxconn');
    const file = await doc(
      'fail.yaml',
      'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_default_ttl: 99\n    net.core.somaxconn: 999\n    net.ipv4.tcp_syn_retries: lots\n',
    );
    const result = await cli('apply', file);
    expect(result.code).toBe(5);
    expect(result.stdout).toContain('Rollback verified');
    expect(result.stderr).toContain('Change 3 of 3 failed');
    expect(sysctlIn('net.ipv4.ip_default_ttl', 'net.core.somaxconn')).toBe(before);
    const list = JSON.parse((await cli('--json', 'transactions')).stdout) as {
      status: string;
      failure?: { phase: string };
    }[];
    expect(list.at(-1)).toMatchObject({ status: 'rolled-back', failure: { phase: 'apply' } });
  });

  it('rolls back on demand (exit 0), and says when there is nothing (exit 8)', async () => {
    const file = await doc('rb.yaml', 'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_default_ttl: 42\n');
    const before = sysctlIn('net.ipv4.ip_default_ttl');
    expect((await cli('apply', file)).code).toBe(0);
    expect(sysctlIn('net.ipv4.ip_default_ttl')).toBe('42\n');
    const rb = await cli('rollback');
    expect(rb.code, rb.stderr).toBe(0);
    expect(sysctlIn('net.ipv4.ip_default_ttl')).toBe(before);
    expect((await cli('rollback', '20990101T000000.000Z-abcdef')).code).toBe(8);
    expect((await cli('confirm')).code).toBe(8);
  });

  it('commit-confirmed: confirm keeps the change and stops the watchdog', async () => {
    const file = await doc('cc.yaml', 'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_default_ttl: 55\n');
    const applied = await cli('--json', 'apply', '--confirm-timeout', '60', file);
    expect(applied.code, applied.stderr).toBe(0);
    const { txId, status } = JSON.parse(applied.stdout) as { txId: string; status: string };
    expect(status).toBe('pending-confirm');
    const watchdog = (await readRecord(txId)).confirm!.watchdog!;
    expect(isAlive(watchdog)).toBe(true);
    const other = await cli('apply', file);
    expect(other.code).toBe(7);
    expect(other.stderr).toContain('pending confirmation');
    const confirmed = await cli('confirm', txId);
    expect(confirmed.code, confirmed.stderr).toBe(0);
    expect((await readRecord(txId)).status).toBe('committed');
    await waitForExit(watchdog, 10_000, 'the watchdog');
    expect(sysctlIn('net.ipv4.ip_default_ttl')).toBe('55\n');
  });

  it('commit-confirmed: the watchdog reverts after the CLI is SIGKILLed', async () => {
    const before = sysctlIn('net.ipv4.ip_default_ttl');
    const file = await doc('cc2.yaml', 'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_default_ttl: 66\n');
    const { child, output } = await startCliUntil(
      ['--netns', ns, '--state-dir', stateDir, 'apply', '--confirm-timeout', '2', file],
      /PENDING/,
    );
    child.kill('SIGKILL');
    const txId = /Transaction (\S+) is PENDING/.exec(output)![1]!;
    expect(sysctlIn('net.ipv4.ip_default_ttl')).toBe('66\n');
    // No other opdbus runs from here on: only the detached watchdog can revert.
    const record = await waitForChange(
      join(stateDir, 'transactions'),
      async () => {
        const r = await readRecord(txId);
        return r.status === 'rolled-back' || r.status === 'restore-failed' ? r : undefined;
      },
      20_000,
      `transaction ${txId} to be reverted`,
    );
    expect(record.status).toBe('rolled-back');
    expect(record.restore?.reason).toContain('not confirmed within 2 s');
    expect(sysctlIn('net.ipv4.ip_default_ttl')).toBe(before);
    expect(existsSync(join(stateDir, 'transactions', `${txId}.watchdog.log`))).toBe(true);
    // Having reverted, it records the rollback in the ledger and exits.
    await waitForExit(record.confirm?.watchdog, 10_000, 'the watchdog');
  });

  for (const layout of ['with its index', 'as the previous version left it (no index)']) {
    it(`a command scoped to one plugin recovers a transaction of another that died mid-apply, ${layout}`, async () => {
      const sd = join(dir, `scoped-recovery-${layout.length}`);
      const before = sysctlIn('net.ipv4.ip_default_ttl');
      const file = await doc('sr.yaml', 'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_default_ttl: 33\n');
      const applied = await runCli(['--json', '--netns', ns, '--state-dir', sd, 'apply', file]);
      expect(applied.code, applied.stderr).toBe(0);
      const { txId } = JSON.parse(applied.stdout) as { txId: string };
      // The journal as a crash mid-apply leaves it: applying, its process gone.
      const journal = join(sd, 'transactions', `${txId}.json`);
      const record = JSON.parse(await readFile(journal, 'utf8')) as TransactionRecord;
      const crashed = { ...record, status: 'applying', owner: { pid: 2 ** 22 + 1, startTime: null } };
      await writeFile(journal, JSON.stringify(crashed));
      const index = join(sd, 'transactions', 'unfinished');
      if (layout === 'with its index') await writeFile(join(index, txId), '');
      else await rm(index, { recursive: true });
      // Scoped to network, it still loads sysctl to restore the sysctl transaction.
      const query = await runCli(['--netns', ns, '--state-dir', sd, 'query', '--plugin', 'network']);
      expect(query.code, query.stderr).toBe(0);
      expect(query.stderr).toContain(`recovered transaction ${txId} (applying): restored`);
      expect(sysctlIn('net.ipv4.ip_default_ttl')).toBe(before);
      expect(JSON.parse(await readFile(journal, 'utf8'))).toMatchObject({ status: 'rolled-back' });
    });
  }
});

describeIf(asRoot, 'opdbus demo', () => {
  it('runs the whole tour in a sandbox and cleans up', async () => {
    const result = await runCli(['--json', 'demo']);
    expect(result.code, result.stderr).toBe(0);
    const body = JSON.parse(result.stdout) as {
      ok: boolean;
      sandbox: { netns: string; stateDir: string };
      failedApply: { code: string; restored: boolean };
      commitConfirmed: { status: string };
    };
    expect(body).toMatchObject({
      ok: true,
      failedApply: { code: 'OPDBUS_ERR_APPLY_FAILED', restored: true },
      commitConfirmed: { status: 'rolled-back' },
    });
    expect(existsSync(body.sandbox.stateDir)).toBe(false);
    expect(existsSync(`/run/netns/${body.sandbox.netns}`)).toBe(false);
  });
});
