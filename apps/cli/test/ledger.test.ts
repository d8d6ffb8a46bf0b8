import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TransactionRecord } from '@opdbus/core';
import {
  FRAME_HEADER,
  Ledger,
  NoteVerifier,
  openCheckpoint,
  verifyConsistency,
  verifyInclusion,
} from '@opdbus/ledger';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, waitForChange, waitForExit } from './helpers.js';
import { describeIf, requirement } from '@opdbus/sandbox/testing';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');

interface LogRow {
  index: number;
  leafHash: string;
  entry: Record<string, unknown> & { kind: string; status?: string; trigger?: unknown; txId?: string };
}

describeIf(asRoot, 'opdbus ledger and snapshot, end to end in a network namespace', () => {
  let netns: SandboxNetns;
  let dir: string;
  let stateDir: string;
  const cli = (...args: string[]) => runCli(['--netns', netns.name, '--state-dir', stateDir, ...args]);
  const sysctlIn = (key: string): string =>
    execFileSync('ip', ['netns', 'exec', netns.name, 'sysctl', '-n', key], { encoding: 'utf8' }).trim();
  const doc = async (name: string, body: Record<string, string | number>): Promise<string> => {
    const file = join(dir, name);
    await writeFile(file, JSON.stringify({ version: 1, plugins: { sysctl: body } }));
    return file;
  };
  const entries = async (): Promise<LogRow[]> => {
    const result = await cli('--json', 'ledger', 'log', '--from', '0', '--limit', '1000');
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as LogRow[];
  };

  beforeAll(async () => {
    netns = await createNetns();
    dir = await mkdtemp(join(tmpdir(), 'opdbus-cli-ledger-'));
    stateDir = join(dir, 'state');
  });
  afterAll(async () => {
    await netns?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('records an apply (plan, result, snapshot) with actor, process and state hashes', async () => {
    const file = await doc('a.json', { 'net.ipv4.ip_forward': 1, 'net.ipv4.ip_default_ttl': 77 });
    const applied = await cli('--json', 'apply', file);
    expect(applied.code, applied.stderr).toBe(0);
    const { txId } = JSON.parse(applied.stdout) as { txId: string };
    const rows = await entries();
    expect(rows.map((r) => r.entry.kind)).toEqual(['plan', 'apply', 'snapshot.created']);
    const [plan, apply, snap] = rows as [LogRow, LogRow, LogRow];
    expect(plan.entry).toMatchObject({
      status: 'planned',
      changes: 2,
      plugins: ['sysctl'],
      target: { netns: netns.name },
    });
    expect(apply.entry).toMatchObject({
      status: 'committed',
      txId,
      actor: { kind: 'user', uid: 0 },
      process: { command: expect.arrayContaining(['apply']) },
    });
    expect(apply.entry.stateHashBefore).toBe(plan.entry.stateHashBefore);
    expect(apply.entry.stateHashAfter).toMatch(/^[0-9a-f]{64}$/);
    expect(apply.entry.stateHashAfter).not.toBe(apply.entry.stateHashBefore);
    const record = JSON.parse(
      await readFile(join(stateDir, 'transactions', `${txId}.json`), 'utf8'),
    ) as TransactionRecord;
    expect(apply.entry.stateHashAfter).toBe(record.stateHashAfter);
    expect(snap.entry).toMatchObject({ trigger: { kind: 'apply', txId } });
    expect((await cli('ledger', 'verify')).code).toBe(0);
    // Each change, with before and after, in the apply's entry.
    const shown = await cli('--json', 'ledger', 'show', '1');
    expect(shown.code, shown.stderr).toBe(0);
    const entry = (JSON.parse(shown.stdout) as { entry: Record<string, unknown> }).entry;
    expect(entry).toMatchObject({ v: 2, kind: 'apply', host: expect.any(String) });
    // In plan order; compared by resource here.
    const records = [...(entry.changeRecords as Array<Record<string, unknown>>)].sort((a, b) =>
      String(a.resource).localeCompare(String(b.resource)),
    );
    expect(records.map((c) => [c.plugin, c.resource, c.op, c.after, c.applied])).toEqual([
      ['sysctl', 'net.ipv4.ip_default_ttl', 'update', '77', true],
      ['sysctl', 'net.ipv4.ip_forward', 'update', '1', true],
    ]);
    const before = record.observedBefore.sysctl as Record<string, string>;
    expect(records.map((c) => c.before)).toEqual([
      before['net.ipv4.ip_default_ttl'],
      before['net.ipv4.ip_forward'],
    ]);
    // …and as JSONL change events.
    const events = await cli('ledger', 'export-changes');
    expect(events.code, events.stderr).toBe(0);
    const lines = events.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    const ttlEvent = lines.find((l) => l.resource === 'net.ipv4.ip_default_ttl');
    expect(ttlEvent).toMatchObject({
      at: apply.entry.at,
      host: entry.host,
      actor: expect.any(String),
      plugin: 'sysctl',
      resource: 'net.ipv4.ip_default_ttl',
      op: 'update',
      before: records[0]!.before,
      after: '77',
      txId,
      index: 1,
      kind: 'apply',
      status: 'committed',
    });
    const out = join(dir, 'changes.jsonl');
    const written = await cli('--json', 'ledger', 'export-changes', '--from', '1', '--out', out);
    expect(written.code, written.stderr).toBe(0);
    expect(JSON.parse(written.stdout)).toMatchObject({ ok: true, events: 2, from: 1 });
    expect((await readFile(out, 'utf8')).trim().split('\n')).toHaveLength(2);
    expect((await cli('ledger', 'export-changes', '--from', '2')).stdout).toBe('');
    // Pinned to another key, the same log does not verify.
    const { NoteSigner } = await import('@opdbus/ledger');
    const pinned = await cli(
      'ledger',
      'verify',
      '--key',
      NoteSigner.generate('vm/opdbus').verifier.toString(),
    );
    expect(pinned.code).toBe(11);
  });

  it('proves inclusion and consistency, prints the signed checkpoint, exports a bundle verifiable offline', async () => {
    const key = NoteVerifier.parse(await readFile(join(stateDir, 'ledger', 'verifier.pub'), 'utf8'));
    const cp = await cli('ledger', 'checkpoint');
    expect(cp.code).toBe(0);
    const { checkpoint } = openCheckpoint(cp.stdout.trimEnd() + '\n', [key]);
    const proof = await cli('--json', 'ledger', 'proof', '1');
    expect(proof.code, proof.stderr).toBe(0);
    const p = JSON.parse(proof.stdout) as { leafHash: string; proof: string[]; size: number; root: string };
    const hex = (h: string) => Buffer.from(h, 'hex');
    expect(p.size).toBe(checkpoint.size);
    expect(verifyInclusion(hex(p.leafHash), 1, p.size, p.proof.map(hex), checkpoint.root)).toBe(true);
    const older = await cli('--json', 'ledger', 'proof', '0', '--size', '2');
    expect(JSON.parse(older.stdout)).toMatchObject({ size: 2 });
    const cons = await cli('--json', 'ledger', 'consistency', '1', String(checkpoint.size));
    const c = JSON.parse(cons.stdout) as { root1: string; root2: string; proof: string[] };
    expect(verifyConsistency(1, checkpoint.size, c.proof.map(hex), hex(c.root1), checkpoint.root)).toBe(true);
    expect((await cli('ledger', 'show', '999')).code).toBe(8);
    expect((await cli('ledger', 'show', 'x')).code).toBe(3);

    const bundle = join(dir, 'evidence.json');
    expect((await cli('ledger', 'export', bundle)).code).toBe(0);
    // Offline: another machine has no state directory, only the bundle and the pinned key.
    const offline = await runCli([
      '--state-dir',
      join(dir, 'nowhere'),
      'ledger',
      'verify-bundle',
      bundle,
      '--key',
      key.toString(),
    ]);
    expect(offline.code, offline.stderr).toBe(0);
    expect(offline.stdout).toMatch(/Bundle verified: \d+ entries/);
    const text = await readFile(bundle, 'utf8');
    await writeFile(
      join(dir, 'forged.json'),
      text.replace(/\\"status\\":\\"committed\\"/, '\\"status\\":\\"rolled-back\\"'),
    );
    const forged = await runCli([
      'ledger',
      'verify-bundle',
      join(dir, 'forged.json'),
      '--key',
      key.toString(),
    ]);
    expect(forged.code).toBe(11);
    expect(forged.stderr).toContain('OPDBUS_ERR_LEDGER_BUNDLE_INVALID');
  });

  it('records rollbacks, confirms and the watchdog restore', async () => {
    expect((await cli('rollback')).code).toBe(0);
    let rows = await entries();
    expect(rows.at(-1)!.entry).toMatchObject({
      kind: 'rollback',
      trigger: 'requested',
      status: 'rolled-back',
    });

    const file = await doc('cc.json', { 'net.ipv4.ip_default_ttl': 55 });
    const pending = await cli('--json', 'apply', '--confirm-timeout', '60', file);
    const { txId } = JSON.parse(pending.stdout) as { txId: string };
    expect((await cli('confirm', txId)).code).toBe(0);
    rows = await entries();
    expect(rows.map((r) => [r.entry.kind, r.entry.status]).slice(-4)).toEqual([
      ['plan', 'planned'],
      ['apply', 'pending-confirm'],
      ['confirm', 'committed'],
      ['snapshot.created', undefined],
    ]);

    const other = await doc('cc2.json', { 'net.ipv4.ip_default_ttl': 66 });
    const unconfirmed = await cli('--json', 'apply', '--confirm-timeout', '1', other);
    const tx2 = (JSON.parse(unconfirmed.stdout) as { txId: string }).txId;
    const reverted = await waitForChange(
      join(stateDir, 'transactions'),
      async () => {
        const r = JSON.parse(
          await readFile(join(stateDir, 'transactions', `${tx2}.json`), 'utf8'),
        ) as TransactionRecord;
        return r.status === 'rolled-back' ? r : undefined;
      },
      20_000,
      'the watchdog to restore',
    );
    // The watchdog records the rollback in the ledger after the transaction record; read it once it has exited.
    await waitForExit(reverted.confirm?.watchdog, 10_000, 'the watchdog');
    rows = await entries();
    expect(rows.at(-1)!.entry).toMatchObject({
      kind: 'rollback',
      trigger: 'watchdog',
      txId: tx2,
      actor: { kind: 'watchdog' },
    });
    expect(sysctlIn('net.ipv4.ip_default_ttl')).toBe('55');
    expect((await cli('ledger', 'verify')).code).toBe(0);
  });

  it('lists, creates, prunes and restores snapshots as a planned apply', async () => {
    const created = await cli('--json', 'snapshot', 'create');
    expect(created.code, created.stderr).toBe(0);
    const { id } = JSON.parse(created.stdout) as { id: string };
    const list = await cli('--json', 'snapshot', 'list');
    const listed = JSON.parse(list.stdout) as {
      backend: string;
      snapshots: { id: string; status: string }[];
    };
    expect(listed.backend).toBe('directory');
    expect(listed.snapshots.every((s) => s.status === 'ok')).toBe(true);
    expect(listed.snapshots.map((s) => s.id)).toContain(id);

    expect(sysctlIn('net.ipv4.ip_forward')).toBe('0'); // the first apply was rolled back
    const file = await doc('later.json', { 'net.ipv4.ip_default_ttl': 99, 'net.ipv4.ip_forward': 1 });
    expect((await cli('apply', file)).code).toBe(0);
    expect(sysctlIn('net.ipv4.ip_default_ttl')).toBe('99');
    const preview = await cli('snapshot', 'restore', id, '--dry-run');
    expect(preview.code).toBe(2);
    expect(preview.stdout).toMatch(/net\.ipv4\.ip_default_ttl/);
    expect(sysctlIn('net.ipv4.ip_default_ttl')).toBe('99');
    const restored = await cli('snapshot', 'restore', id);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/Committed transaction/);
    expect(sysctlIn('net.ipv4.ip_default_ttl')).toBe('55');
    expect(sysctlIn('net.ipv4.ip_forward')).toBe('0');
    expect((await entries()).at(-1)!.entry).toMatchObject({
      kind: 'snapshot.restored',
      id,
      status: 'committed',
    });

    const dry = await cli(
      '--json',
      'snapshot',
      'prune',
      '--dry-run',
      '--hourly',
      '1',
      '--daily',
      '0',
      '--weekly',
      '0',
      '--quarterly',
      '0',
      '--min-age',
      '0',
    );
    const plan = JSON.parse(dry.stdout) as {
      keep: { id: string }[];
      remove: { id: string }[];
      removed: string[];
    };
    expect(plan.removed).toEqual([]);
    expect(plan.keep.length).toBeGreaterThan(0);
    expect(plan.remove.length).toBeGreaterThan(0);
    const pruned = JSON.parse(
      (
        await cli(
          '--json',
          'snapshot',
          'prune',
          '--hourly',
          '1',
          '--daily',
          '0',
          '--weekly',
          '0',
          '--quarterly',
          '0',
          '--min-age',
          '0',
        )
      ).stdout,
    ) as {
      removed: string[];
    };
    expect(pruned.removed).toEqual(plan.remove.map((r) => r.id));
    expect(
      (await entries()).filter((r) => r.entry.kind === 'snapshot.pruned').map((r) => r.entry.id),
    ).toEqual(pruned.removed);
  });

  it('restores a snapshot taken before an interface was deleted: the link first, then its keys', async () => {
    const ip = (...args: string[]): string =>
      execFileSync('ip', ['-n', netns.name, ...args], { encoding: 'utf8' });
    ip('link', 'add', 'br-snap', 'type', 'bridge');
    execFileSync('ip', ['netns', 'exec', netns.name, 'sysctl', '-qw', 'net.ipv4.conf.br-snap.forwarding=1']);
    const created = await cli('--json', 'snapshot', 'create');
    expect(created.code, created.stderr).toBe(0);
    const { id } = JSON.parse(created.stdout) as { id: string };
    ip('link', 'del', 'br-snap');

    const restored = await cli('snapshot', 'restore', id);
    expect(restored.code, restored.stderr).toBe(0);
    // The link is made first, then the keys that exist only with it.
    const linkMade = restored.stdout.indexOf('network create link/br-snap: ok');
    expect(linkMade).toBeGreaterThan(-1);
    expect(restored.stdout.indexOf('sysctl update net.ipv4.conf.br-snap.forwarding: ok')).toBeGreaterThan(
      linkMade,
    );
    expect(ip('-br', 'link', 'show', 'br-snap')).toMatch(/^br-snap /);
    expect(sysctlIn('net.ipv4.conf.br-snap.forwarding')).toBe('1');

    // A key of an interface that nothing creates: the write names the interface, and the
    // transaction rolls back.
    const ttl = sysctlIn('net.ipv4.ip_default_ttl');
    const file = await doc('ghost.json', {
      'net.ipv4.ip_default_ttl': 77,
      'net.ipv4.conf.ghost0.forwarding': 1,
    });
    const failed = await cli('apply', file);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/the interface ghost0 does not exist; create it in the network section/);
    expect(sysctlIn('net.ipv4.ip_default_ttl')).toBe(ttl);
    ip('link', 'del', 'br-snap');
  });

  it('reports tampering with the entry index (exit 11)', async () => {
    const logFile = join(stateDir, 'ledger', 'log');
    const log = await readFile(logFile);
    // Find entry 2's record and flip a byte of its JSON.
    let at = 0;
    for (let seen = 0; ;) {
      const type = log[at + 2];
      const length = log.readUInt32LE(at + 4);
      if (type === 1 && seen++ === 2) break;
      at += FRAME_HEADER + length;
    }
    log[at + FRAME_HEADER + 3] = log[at + FRAME_HEADER + 3]! ^ 0x01;
    await writeFile(logFile, log);
    const verify = await cli('--json', 'ledger', 'verify');
    expect(verify.code).toBe(11);
    expect(JSON.parse(verify.stdout)).toMatchObject({
      ok: false,
      size: 2,
      tampering: { index: 2, kind: 'record' },
    });
    const human = await cli('ledger', 'verify');
    expect(human.stderr).toMatch(/TAMPERING[\s\S]*first entry that cannot be trusted is 2/);
  });
});

describe('opdbus ledger beside a writer, and the last record', () => {
  let stateDir: string;
  const cli = (...args: string[]) => runCli(['--state-dir', stateDir, ...args]);
  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'opdbus-cli-ledger-last-'));
  });
  afterAll(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('reads (log, show, proof, checkpoint, verify) while another process holds the ledger for writing', async () => {
    const writer = await Ledger.open({
      dir: join(stateDir, 'ledger'),
      keyFile: join(stateDir, 'keys', 'ledger.key'),
      lockCommand: 'the test writer',
    });
    try {
      for (let i = 0; i < 5; i++) await writer.append({ kind: 'test', i });
      const log = await cli('--json', 'ledger', 'log');
      expect(log.code, log.stderr).toBe(0);
      expect((JSON.parse(log.stdout) as unknown[]).length).toBe(5);
      expect((await cli('ledger', 'show', '4')).code).toBe(0);
      const proof = await cli('--json', 'ledger', 'proof', '2');
      expect(proof.code, proof.stderr).toBe(0);
      expect(JSON.parse(proof.stdout)).toMatchObject({ index: 2, size: 5 });
      expect((await cli('ledger', 'checkpoint')).code).toBe(0);
      const verify = await cli('--json', 'ledger', 'verify');
      expect(verify.code, verify.stderr).toBe(0);
      expect(JSON.parse(verify.stdout)).toMatchObject({
        ok: true,
        size: 5,
        writer: { pid: process.pid, command: 'the test writer' },
      });
    } finally {
      await writer.close();
    }
  });

  it('a flipped byte in the final checkpoint record is tampering (exit 11, index named), and nothing is cut', async () => {
    const logFile = join(stateDir, 'ledger', 'log');
    const log = await readFile(logFile);
    let last = 0;
    for (let at = 0; at < log.length; at += FRAME_HEADER + log.readUInt32LE(at + 4)) last = at;
    expect(log[last + 2]).toBe(2);
    log[last + FRAME_HEADER + 10] = log[last + FRAME_HEADER + 10]! ^ 0x01;
    await writeFile(logFile, log);
    const verify = await cli('--json', 'ledger', 'verify');
    expect(verify.code).toBe(11);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: false, tampering: { index: 5, kind: 'record' } });
    expect(JSON.parse(verify.stdout)).not.toHaveProperty('tornTail');
    const human = await cli('ledger', 'verify');
    expect(human.code).toBe(11);
    expect(human.stderr).toMatch(/TAMPERING[\s\S]*first entry that cannot be trusted is 5/);
    expect((await cli('ledger', 'log')).code).toBe(11);
    expect((await readFile(logFile)).equals(log)).toBe(true);
  });
});
