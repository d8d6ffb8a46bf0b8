import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { OpdbusError, writeOutputFile } from '@opdbus/core';
import {
  Ledger,
  NoteVerifier,
  exportBundle,
  openCheckpoint,
  readChangeEvents,
  verifyBundle,
  verifyConsistency,
  verifyInclusion,
  verifyLedger,
  type ChangeEvent as LedgerChangeEvent,
  type LedgerEntry,
} from '@opdbus/ledger';
import { exitCodes } from '../exitCodes.js';
import { ledgerPaths, type GlobalOptions, type Output } from '../runtime.js';

function integer(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new OpdbusError('OPDBUS_ERR_USAGE', `${what} must be a non-negative integer, got "${text}".`);
  }
  return Number(text);
}

/**
 * Open the state directory's ledger for writing (created on first use, a torn tail repaired).
 * Holds the ledger's writer lock until `close()`: other writers (an apply's audit records, the
 * daemon) wait for it.
 */
export async function openLedger(global: GlobalOptions, output: Output): Promise<Ledger> {
  const paths = ledgerPaths(global.stateDir);
  const ledger = await Ledger.open({ dir: paths.ledgerDir, keyFile: paths.ledgerKey, origin: paths.origin });
  const torn = ledger.openReport.tornTail;
  if (torn !== undefined)
    output.err(
      `opdbus: the ledger had a torn tail (${torn.bytes} bytes at byte ${torn.offset}, a crash mid-write); it was cut back to the last whole record.`,
    );
  return ledger;
}

/**
 * Open the state directory's ledger to read it: no lock (it works while an apply or the daemon
 * appends), no repair; the view ends at the last signed checkpoint. `undefined` when there is no
 * ledger yet.
 */
async function openLedgerToRead(global: GlobalOptions): Promise<Ledger | undefined> {
  const dir = ledgerPaths(global.stateDir).ledgerDir;
  if (!existsSync(join(dir, 'log'))) return undefined;
  return Ledger.open({ dir, readOnly: true });
}

function noLedger(global: GlobalOptions): OpdbusError {
  const dir = ledgerPaths(global.stateDir).ledgerDir;
  return new OpdbusError(
    'OPDBUS_ERR_LEDGER_NOT_FOUND',
    `There is no ledger in ${dir} yet; it is created by the first apply.`,
    { data: { dir } },
  );
}

async function withLedger<T>(global: GlobalOptions, fn: (ledger: Ledger) => T | Promise<T>): Promise<T> {
  const ledger = await openLedgerToRead(global);
  if (ledger === undefined) throw noLedger(global);
  try {
    return await fn(ledger);
  } finally {
    await ledger.close();
  }
}

const json = (value: unknown): string => JSON.stringify(value, null, 2);

/** `opdbus ledger verify`. */
export async function verify(
  global: GlobalOptions,
  options: { checkpoint?: string[]; key?: string },
  output: Output,
): Promise<number> {
  const dir = ledgerPaths(global.stateDir).ledgerDir;
  if (!existsSync(join(dir, 'log'))) throw noLedger(global);
  const trusted = await Promise.all((options.checkpoint ?? []).map((file) => readFile(file, 'utf8')));
  const report = await verifyLedger(dir, {
    trusted,
    ...(options.key === undefined ? {} : { verifier: NoteVerifier.parse(options.key) }),
  });
  if (global.json) {
    output.out(json(report));
  } else if (report.ok) {
    output.out(
      `Ledger verified: ${report.size} entries, ${report.checkpoints} signed checkpoints, root ${report.root} (${report.ms.toFixed(0)} ms, ${report.hashBackend}).`,
    );
    if (report.tornTail !== undefined && report.writer !== undefined)
      output.out(
        `An append is in progress (${report.writer.pid === undefined ? 'a writer' : `pid ${report.writer.pid}, ${report.writer.command ?? '?'}`} holds the ledger): ${report.tornTail.bytes} bytes after the last whole record were not verified yet.`,
      );
    else if (report.tornTail !== undefined)
      output.out(
        `Torn tail: an incomplete last record of ${report.tornTail.bytes} bytes at byte ${report.tornTail.offset} (a crash mid-write); cut back on the next write.`,
      );
  } else {
    output.err(`opdbus: TAMPERING: ${report.tampering?.message ?? 'the ledger does not verify'}`);
    output.err(
      `The first entry that cannot be trusted is ${report.tampering?.index ?? '?'}; ${report.size} entries before it verified.`,
    );
  }
  return report.ok ? exitCodes.OK.code : exitCodes.TAMPERED.code;
}

function summary(e: LedgerEntry): string {
  const v = e.value as Record<string, unknown>;
  const actor = v.actor as { name?: string; uid?: number; pid?: number } | undefined;
  const parts = [
    String(e.index).padStart(6),
    typeof v.at === 'string' ? v.at : '-',
    (typeof v.kind === 'string' ? v.kind : '-').padEnd(16),
    String(
      typeof v.status === 'string'
        ? v.status
        : typeof v.trigger === 'string'
          ? v.trigger
          : ((v.trigger as { kind?: string } | undefined)?.kind ?? ''),
    ).padEnd(15),
    typeof v.txId === 'string' ? `tx ${v.txId}` : typeof v.id === 'string' ? `snapshot ${v.id}` : '',
    actor?.name !== undefined ? `by ${actor.name} (uid ${actor.uid ?? '?'}, pid ${actor.pid ?? '?'})` : '',
  ];
  return parts.filter((p) => p !== '').join('  ');
}

/** `opdbus ledger log`. */
export async function log(
  global: GlobalOptions,
  options: { from?: string; limit: string },
  output: Output,
): Promise<number> {
  const limit = integer(options.limit, '--limit') ?? 50;
  if (!existsSync(join(ledgerPaths(global.stateDir).ledgerDir, 'log'))) {
    output.out(global.json ? json([]) : 'The ledger is empty.');
    return exitCodes.OK.code;
  }
  return withLedger(global, async (ledger) => {
    const from = integer(options.from, '--from') ?? Math.max(0, ledger.size - limit);
    const entries: LedgerEntry[] = [];
    for await (const e of ledger.entries(from, Math.min(ledger.size, from + limit))) entries.push(e);
    if (global.json)
      output.out(
        json(entries.map((e) => ({ index: e.index, leafHash: e.leafHash.toString('hex'), entry: e.value }))),
      );
    else if (entries.length === 0)
      output.out(
        ledger.size === 0
          ? 'The ledger is empty.'
          : `No entries from ${from} (the ledger has ${ledger.size}).`,
      );
    else output.out(entries.map(summary).join('\n'));
    return exitCodes.OK.code;
  });
}

/** `opdbus ledger show N`. */
export async function show(global: GlobalOptions, index: string, output: Output): Promise<number> {
  const i = integer(index, 'The entry index')!;
  return withLedger(global, async (ledger) => {
    const e = await ledger.get(i);
    if (global.json)
      output.out(json({ index: e.index, leafHash: e.leafHash.toString('hex'), entry: e.value }));
    else output.out(`Entry ${e.index} (leaf hash ${e.leafHash.toString('hex')}):\n${json(e.value)}`);
    return exitCodes.OK.code;
  });
}

/** `opdbus ledger proof N [--size M]`. */
export async function proof(
  global: GlobalOptions,
  index: string,
  options: { size?: string },
  output: Output,
): Promise<number> {
  const i = integer(index, 'The entry index')!;
  return withLedger(global, async (ledger) => {
    const size = integer(options.size, '--size') ?? ledger.size;
    if (size > ledger.size || i >= size) {
      throw new OpdbusError(
        'OPDBUS_ERR_LEDGER_NOT_FOUND',
        `Entry ${i} is not in a tree of size ${size} (the ledger has ${ledger.size} entries).`,
        {
          data: { index: i, size },
        },
      );
    }
    const leaf = ledger.leafHash(i);
    const path = ledger.inclusionProof(i, size);
    const root = ledger.root(size);
    if (!verifyInclusion(leaf, i, size, path, root)) {
      throw new OpdbusError(
        'OPDBUS_ERR_LEDGER_TAMPERED',
        `The proof computed for entry ${i} does not verify: the ledger's stored hashes are inconsistent. Run \`opdbus ledger verify\`.`,
      );
    }
    const checkpoint = size === ledger.size ? await ledger.checkpoint() : undefined;
    const body = {
      index: i,
      size,
      leafHash: leaf.toString('hex'),
      proof: path.map((h) => h.toString('hex')),
      root: root.toString('hex'),
      ...(checkpoint === undefined ? {} : { checkpoint }),
    };
    if (global.json) output.out(json(body));
    else {
      output.out(`Inclusion proof of entry ${i} in the tree of ${size} entries (RFC 9162), verified:`);
      output.out(`  leaf hash  ${body.leafHash}`);
      for (const [k, h] of body.proof.entries()) output.out(`  proof[${k}]   ${h}`);
      output.out(`  root       ${body.root}`);
      if (checkpoint !== undefined) output.out(`Signed checkpoint:\n${checkpoint}`);
    }
    return exitCodes.OK.code;
  });
}

/** `opdbus ledger consistency M N`. */
export async function consistency(
  global: GlobalOptions,
  m: string,
  n: string,
  output: Output,
): Promise<number> {
  const size1 = integer(m, 'M')!;
  const size2 = integer(n, 'N')!;
  return withLedger(global, (ledger) => {
    if (size1 > size2 || size2 > ledger.size) {
      throw new OpdbusError(
        'OPDBUS_ERR_LEDGER_NOT_FOUND',
        `Sizes must satisfy M ≤ N ≤ ${ledger.size} (the ledger's size); got ${size1} and ${size2}.`,
        {
          data: { size1, size2, size: ledger.size },
        },
      );
    }
    const path = ledger.consistencyProof(size1, size2);
    const root1 = ledger.root(size1);
    const root2 = ledger.root(size2);
    if (!verifyConsistency(size1, size2, path, root1, root2)) {
      throw new OpdbusError(
        'OPDBUS_ERR_LEDGER_TAMPERED',
        'The consistency proof computed does not verify: the stored hashes are inconsistent. Run `opdbus ledger verify`.',
      );
    }
    const body = {
      size1,
      size2,
      root1: root1.toString('hex'),
      root2: root2.toString('hex'),
      proof: path.map((h) => h.toString('hex')),
    };
    if (global.json) output.out(json(body));
    else {
      output.out(`Consistency proof from ${size1} to ${size2} entries (RFC 9162), verified:`);
      output.out(`  root ${size1}  ${body.root1}\n  root ${size2}  ${body.root2}`);
      for (const [k, h] of body.proof.entries()) output.out(`  proof[${k}]  ${h}`);
    }
    return exitCodes.OK.code;
  });
}

/** `opdbus ledger checkpoint`. */
export async function checkpoint(global: GlobalOptions, output: Output): Promise<number> {
  return withLedger(global, async (ledger) => {
    const note = await ledger.checkpoint();
    const { checkpoint: cp } = openCheckpoint(note, [ledger.verifier]);
    if (global.json)
      output.out(
        json({
          origin: cp.origin,
          size: cp.size,
          root: cp.root.toString('hex'),
          note,
          verifierKey: ledger.verifier.toString(),
        }),
      );
    else output.out(note);
    return exitCodes.OK.code;
  });
}

/** `opdbus ledger export FILE`. */
export async function exportCommand(
  global: GlobalOptions,
  file: string,
  options: { from?: string; to?: string },
  output: Output,
): Promise<number> {
  return withLedger(global, async (ledger) => {
    const from = integer(options.from, '--from');
    const to = integer(options.to, '--to');
    const bundle = await exportBundle(ledger, {
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
    });
    const text = `${JSON.stringify(bundle, null, 2)}\n`;
    if (file === '-') output.out(text);
    else {
      await writeOutputFile(file, text);
      const { checkpoint: cp } = openCheckpoint(bundle.checkpoint, [ledger.verifier]);
      if (global.json)
        output.out(
          json({
            ok: true,
            file,
            entries: bundle.entries.length,
            size: cp.size,
            verifierKey: bundle.verifierKey,
          }),
        );
      else
        output.out(
          `Exported ${bundle.entries.length} entries with inclusion proofs to the checkpoint at size ${cp.size} into ${file}.\nVerify it anywhere with: opdbus ledger verify-bundle ${file} --key ${bundle.verifierKey}`,
        );
    }
    return exitCodes.OK.code;
  });
}

/** `opdbus ledger verify-bundle FILE`: offline, no state directory. */
export async function verifyBundleCommand(
  global: GlobalOptions,
  file: string,
  options: { key?: string; keyFile?: string },
  output: Output,
): Promise<number> {
  let text: string;
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    text = Buffer.concat(chunks).toString('utf8');
  } else {
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_LEDGER_NOT_FOUND',
        `Cannot read the bundle ${file}: ${(err as Error).message}.`,
        { data: { file }, cause: err },
      );
    }
  }
  const key =
    options.key ??
    (options.keyFile === undefined ? undefined : (await readFile(options.keyFile, 'utf8')).trim());
  const result = verifyBundle(text, key === undefined ? {} : { verifier: key });
  if (global.json) output.out(json({ ok: true, ...result }));
  else {
    output.out(
      `Bundle verified: ${result.indexes.length} entries of ${result.origin} are included in the signed tree of ${result.size} entries (root ${result.root}).`,
    );
    if (!result.pinnedKey)
      output.out('Note: verified with the key the bundle names; pass --key to pin the log key you trust.');
  }
  return exitCodes.OK.code;
}

/**
 * `opdbus ledger export-changes [--from N] [--out FILE]`: every change the ledger records as a
 * JSONL change event, one per line (docs/ledger-format.md), to FILE or stdout.
 */
export async function exportChanges(
  global: GlobalOptions,
  options: { from?: string; out?: string },
  output: Output,
): Promise<number> {
  const from = integer(options.from, '--from') ?? 0;
  // A reader: no lock, so it works while an apply or the daemon appends.
  return withLedger(global, async (ledger) => {
    const lines: string[] = [];
    let count = 0;
    for await (const event of readChangeEvents(ledger, { from })) {
      const line = JSON.stringify(event);
      count++;
      if (options.out === undefined || options.out === '-') output.out(line);
      else lines.push(line);
    }
    if (options.out !== undefined && options.out !== '-') {
      const file = await writeOutputFile(options.out, lines.length === 0 ? '' : `${lines.join('\n')}\n`);
      const summary = { ok: true, file, events: count, from, size: ledger.size };
      if (global.json) output.out(json(summary));
      else output.out(`Wrote ${count} change events from entries ${from} to ${ledger.size - 1} to ${file}.`);
    }
    return exitCodes.OK.code;
  });
}

/**
 * Every change the state directory's ledger records (applies and the rollbacks that undid them),
 * in the order they took effect, for `opdbus anomaly train --from-ledger`. Read without a lock.
 */
export async function ledgerChangeEvents(global: GlobalOptions): Promise<LedgerChangeEvent[]> {
  return withLedger(global, async (ledger) => {
    const events: LedgerChangeEvent[] = [];
    for await (const event of readChangeEvents(ledger)) events.push(event);
    return events;
  });
}
