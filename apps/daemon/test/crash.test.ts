// opdbusd killed with SIGKILL in the middle of a correction, as a real process: the journal it left
// behind is recovered at the next start (the half-done transaction restored and recorded), and the
// daemon then brings the namespace to its desired state. The kill is placed deterministically by
// watching the journal: the correction creates 400 bridges, and the daemon is killed as soon as
// its transaction record says `applying`; the test then checks the record was indeed left
// unfinished, so it cannot pass without having interrupted a correction.
import { spawn, type ChildProcess } from 'node:child_process';
import { watch } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ledger, verifyLedger } from '@opdbus/ledger';
import { createNetns, probeSandbox, type SandboxNetns } from '@opdbus/sandbox';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const probe = probeSandbox().netns;
const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const BRIDGES = 400;

let dir: string;
let ns: SandboxNetns;
const children: ChildProcess[] = [];

beforeEach(async () => {
  if (!probe.available) return;
  dir = await mkdtemp(join(tmpdir(), 'opdbusd-crash-'));
  ns = await createNetns();
  const links = Array.from(
    { length: BRIDGES },
    (_, i) => `      - { name: brc${i}, kind: bridge, state: up }`,
  );
  await writeFile(
    join(dir, 'desired.yaml'),
    `version: 1\nplugins:\n  network:\n    links:\n${links.join('\n')}\n`,
  );
});
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }
  if (!probe.available) return;
  await ns.destroy();
  await rm(dir, { recursive: true, force: true });
});

function startDaemon(): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      bin,
      '--state-dir',
      join(dir, 'state'),
      '--netns',
      ns.name,
      '--desired',
      join(dir, 'desired.yaml'),
      '--mode',
      'enforce',
      '--listen',
      `unix:${join(dir, 'api.sock')}`,
      '--log-level',
      'info',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

/** GET over the daemon's unix socket; undefined while it does not answer. */
function get(path: string): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = request({ socketPath: join(dir, 'api.sock'), path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

async function readRecords(txDir: string): Promise<{ txId: string; status: string }[]> {
  const out: { txId: string; status: string }[] = [];
  for (const name of await readdir(txDir).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue;
    try {
      out.push(JSON.parse(await readFile(join(txDir, name), 'utf8')) as { txId: string; status: string });
    } catch {
      // A record being replaced: the next event reads it again.
    }
  }
  return out;
}

/** Resolves with the transaction's id once a record in `txDir` says `applying`. */
async function applyingRecord(txDir: string): Promise<string> {
  await mkdir(txDir, { recursive: true, mode: 0o700 });
  return new Promise((resolve, reject) => {
    let done = false;
    const look = (): void => {
      void readRecords(txDir).then((records) => {
        const found = records.find((r) => r.status === 'applying');
        if (found !== undefined && !done) {
          done = true;
          watcher.close();
          resolve(found.txId);
        }
      }, reject);
    };
    const watcher = watch(txDir, look);
    look();
  });
}

/** How many of the document's bridges are up (brief output: the JSON of 400 bridges exceeds exec's 64 KiB). */
async function bridgesUp(): Promise<number> {
  const r = await ns.exec('ip', ['-br', 'link', 'show', 'type', 'bridge', 'up'], { check: true });
  return r.stdout.split('\n').filter((line) => /^brc\d+\s/.test(line)).length;
}

describe.skipIf(!probe.available)('opdbusd killed with SIGKILL mid-correction', () => {
  it('recovers the journal at the next start and ends at the desired state', async () => {
    const txDir = join(dir, 'state', 'transactions');
    const seen = applyingRecord(txDir);
    const first = startDaemon();
    const exited = new Promise((resolve) => first.once('exit', resolve));
    const txId = await seen;
    first.kill('SIGKILL');
    await exited;
    expect(first.signalCode).toBe('SIGKILL');

    // The correction was interrupted: its record is not finished, and the host is not (all) there.
    const left = (await readRecords(txDir)).find((r) => r.txId === txId);
    expect(['applying', 'verifying']).toContain(left?.status);
    expect(await bridgesUp()).toBeLessThan(BRIDGES);

    const second = startDaemon();
    let health = await get('/healthz');
    while (health?.status !== 200) {
      expect(second.exitCode).toBeNull();
      await new Promise((resolve) => setTimeout(resolve, 100));
      health = await get('/healthz');
    }
    // Recovered: the interrupted transaction was restored and recorded, then the first sync put
    // the namespace at its desired state.
    const recovered = (await readRecords(txDir)).find((r) => r.txId === txId);
    expect(recovered?.status).toBe('rolled-back');
    expect(await bridgesUp()).toBe(BRIDGES);
    const drift = JSON.parse((await get('/v1/drift'))?.body ?? '{}') as { drift: unknown[] };
    expect(drift.drift).toEqual([]);

    second.kill('SIGTERM');
    await new Promise((resolve) => second.once('exit', resolve));
    expect((await verifyLedger(join(dir, 'state', 'ledger'))).ok).toBe(true);
    const ledger = await Ledger.open({ dir: join(dir, 'state', 'ledger'), readOnly: true });
    try {
      const entries: Record<string, unknown>[] = [];
      for await (const e of ledger.entries(0, ledger.size)) entries.push(e.value as Record<string, unknown>);
      expect(entries.some((e) => e.txId === txId && e.kind === 'rollback')).toBe(true);
    } finally {
      await ledger.close();
    }
  });
});
