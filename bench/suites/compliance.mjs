// Compliance evidence over a busy host's ledger: building and writing a SOC 2 bundle, and
// verifying it offline, for one day and for the whole ledger — beside the ledger's own evidence
// bundle of the same entries (`opdbus ledger export` + `verify-bundle`) and sha256sum of the files.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildReport, loadFramework, verifyEvidenceBundle, writeEvidenceBundle } from '@opdbus/compliance';
import { Ledger, NoteSigner, exportBundle, readSecretFile, verifyBundle } from '@opdbus/ledger';
import { has, measure, ms, sh, table } from '../lib.mjs';

export const title = 'compliance: a SOC 2 evidence bundle from a 20,000-entry ledger';

const APPLIES = 10_000;
const MINUTE = 60_000;

export async function run({ log }) {
  const dir = await mkdtemp(join(tmpdir(), 'opdbus-bench-compliance-'));
  try {
    const ledgerDir = join(dir, 'ledger');
    const keyFile = join(dir, 'ledger.key');
    log(`append ${APPLIES} applies with their snapshot entries (one a minute)`);
    const writer = await Ledger.open({ dir: ledgerDir, keyFile, origin: 'bench/opdbus' });
    const t0 = Date.parse('2026-09-01T00:00:00Z');
    let pending = [];
    for (let i = 0; i < APPLIES; i++) {
      const at = new Date(t0 + i * MINUTE).toISOString();
      const txId = `20260901T000000.000Z-${i.toString(16).padStart(6, '0')}`;
      const actor = { kind: 'user', name: 'alice', uid: 1000, pid: 1000 + (i % 30000) };
      pending.push(
        writer.append({
          v: 2,
          kind: 'apply',
          at,
          host: 'web1',
          actor,
          process: { pid: actor.pid, startTime: 1, command: ['/usr/bin/opdbus', 'apply', 'host.yaml'] },
          target: {},
          txId,
          planHash: 'a'.repeat(64),
          changes: 1,
          plugins: ['sysctl'],
          status: 'committed',
          stateHashBefore: 'b'.repeat(64),
          stateHashAfter: 'c'.repeat(64),
          changeRecords: [
            {
              id: '3f1c9a0b7d2e4f61',
              plugin: 'sysctl',
              resource: 'net.ipv4.ip_forward',
              op: 'update',
              before: String(i % 2),
              after: String((i + 1) % 2),
              risk: null,
              summary: 'set net.ipv4.ip_forward',
              applied: true,
            },
          ],
        }),
        writer.append({
          v: 1,
          kind: 'snapshot.created',
          at,
          actor,
          id: `s${i}`,
          createdAt: at,
          cipherHash: 'd'.repeat(64),
          stateHash: 'c'.repeat(64),
          plugins: ['sysctl'],
          backend: 'directory',
          trigger: { kind: 'apply', txId },
        }),
      );
      if (pending.length >= 2000) {
        await Promise.all(pending);
        pending = [];
      }
    }
    await Promise.all(pending);
    await writer.close();

    const ledger = await Ledger.open({ dir: ledgerDir, readOnly: true });
    const signer = NoteSigner.parse((await readSecretFile(keyFile)).toString('utf8'));
    const framework = await loadFramework('soc2');
    const verifierKey = ledger.verifier.toString();
    const rows = [];
    let n = 0;
    for (const [label, from, iterations] of [
      ['last day (1,440 applies)', new Date(t0 + (APPLIES - 1440) * MINUTE), 5],
      [`whole ledger (${APPLIES.toLocaleString('en')} applies)`, undefined, 2],
    ]) {
      log(`report and verify: ${label}`);
      const period = from === undefined ? {} : { from };
      let out;
      const report = await measure(
        async () => {
          out = join(dir, `ev-${n++}`);
          const built = await buildReport({ framework, ledger, period });
          await writeEvidenceBundle(out, { ...built, signer });
        },
        { iterations, warmup: 1 },
      );
      const verify = await measure(
        async () => {
          const result = await verifyEvidenceBundle(out, { verifierKey });
          if (!result.ok) throw new Error(JSON.stringify(result.findings[0]));
        },
        { iterations, warmup: 1 },
      );
      const files = await readdir(out);
      let bytes = 0;
      for (const f of files) bytes += (await stat(join(out, f))).size;
      const fromIndex = from === undefined ? 0 : (APPLIES - 1440) * 2;
      const ledgerExport = await measure(
        async () => {
          const bundle = await exportBundle(ledger, { from: fromIndex });
          verifyBundle(JSON.stringify(bundle), { verifier: verifierKey });
        },
        { iterations, warmup: 1 },
      );
      const sum = has('sha256sum')
        ? await measure(
            () =>
              sh(
                'sha256sum',
                files.map((f) => join(out, f)),
              ),
            { iterations, warmup: 1 },
          )
        : undefined;
      rows.push([
        label,
        `**${ms(report.median)}**`,
        `**${ms(verify.median)}**`,
        `${(bytes / 2 ** 20).toFixed(1)} MiB`,
        `${ms(ledgerExport.median)} (export + verify-bundle of the same entries)`,
        sum === undefined
          ? 'n/a'
          : `${ms(sum.median)} (sha256sum of the files: proves nothing about entries)`,
      ]);
    }
    await ledger.close();
    return `${table(
      [
        'Period',
        'Report (evaluate + write bundle)',
        'Verify offline',
        'Bundle size',
        'Ledger evidence bundle alone',
        'Checksums alone',
      ],
      rows,
    )}

A ledger of ${APPLIES.toLocaleString('en')} committed applies (one a minute, each with one sysctl
change record) and their ${APPLIES.toLocaleString('en')} snapshot entries: ${(APPLIES * 2).toLocaleString('en')}
entries. The SOC 2 mapping runs its ledger queries (integrity of the whole log, attribution, change
records, outcomes, drift, snapshot coverage, restores) and, without a host, leaves the host checks
manual. A report reads the ledger from the period's first entry on (found by bisection), so a day
costs a fraction of the whole history; reading each entry (\`Ledger.get\`, one read per entry) is most
of the whole-ledger time. Verification checks the manifest signature, every file's SHA-256, the
checkpoint, every entry's inclusion proof and every item's citation, and runs the period's ledger
queries again over the bundled entries. The machine is shared (2 cores): runs vary by up to 2×. Medians of 5 (day) and 2
(whole ledger) runs.`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
