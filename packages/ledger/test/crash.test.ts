import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ledger, verifyLedger } from '../src/index.js';

const fixture = new URL('./fixtures/appendLoop.mjs', import.meta.url).pathname;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'opdbus-ledger-crash-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Run the append loop until it has acknowledged `acks` appends, then SIGKILL it. */
function runAndKill(start: number, acks: number): Promise<{ acked: Map<number, number>; opened: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fixture, dir, String(start)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked = new Map<number, number>();
    let buffered = '';
    let opened = '';
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const m = /^ACK (\d+) (\d+)$/.exec(line);
        if (m) acked.set(Number(m[1]), Number(m[2]));
        else if (line.startsWith('OPEN')) opened = line;
      }
      if (!killed && acked.size >= acks) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.once('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ acked, opened });
      else reject(new Error(`append loop exited with ${code ?? signal}: ${stderr}`));
    });
  });
}

describe('crash safety', () => {
  it('every append acknowledged before SIGKILL survives, and the log verifies, over many kills', async () => {
    let next = 0;
    const all = new Map<number, number>();
    for (let round = 0; round < 25; round++) {
      const { acked, opened } = await runAndKill(next, 50 + ((round * 97) % 400));
      expect(opened).toMatch(/^OPEN \d+/);
      for (const [index, n] of acked) all.set(index, n);
      next = Math.max(...acked.values()) + 1000;
      const report = await verifyLedger(dir);
      expect(report.ok, report.tampering?.message).toBe(true);
      const ledger = await Ledger.open({ dir });
      try {
        for (const [index, n] of acked) {
          const entry = await ledger.get(index);
          expect(entry.value).toMatchObject({ n });
        }
      } finally {
        await ledger.close();
      }
    }
    const ledger = await Ledger.open({ dir });
    try {
      expect(ledger.size).toBeGreaterThanOrEqual(all.size);
      for (const [index, n] of all) expect((await ledger.get(index)).value).toMatchObject({ n });
    } finally {
      await ledger.close();
    }
    expect(await verifyLedger(dir)).toMatchObject({ ok: true });
  });
});
