import { OpdbusError, checkOutputPath, parseStateDocument, type ApplyResult } from '@opdbus/core';
import { SnapshotManager, type RetentionPolicy, type SnapshotInfo } from '@opdbus/ledger';
import { exitCodes } from '../exitCodes.js';
import {
  createEngine,
  ensureStateDir,
  ledgerPaths,
  recoverFirst,
  type GlobalOptions,
  type Output,
} from '../runtime.js';
import { applyDocument } from './apply.js';
import { openLedger } from './ledger.js';
import type { Ledger } from '@opdbus/ledger';
import { userInfo } from 'node:os';

const json = (value: unknown): string => JSON.stringify(value, null, 2);

function actor(): { kind: string; name: string; uid: number; pid: number } {
  return { kind: 'user', name: userInfo().username, uid: process.getuid?.() ?? -1, pid: process.pid };
}

async function withSnapshots<T>(
  global: GlobalOptions,
  output: Output,
  fn: (snaps: SnapshotManager, ledger: Ledger) => Promise<T>,
): Promise<T> {
  ensureStateDir(global.stateDir);
  const ledger = await openLedger(global, output);
  try {
    const paths = ledgerPaths(global.stateDir);
    const snaps = await SnapshotManager.open({
      dir: paths.snapshotsDir,
      keyFile: paths.snapshotKey,
      ledger,
      actor: actor(),
    });
    return await fn(snaps, ledger);
  } finally {
    await ledger.close();
  }
}

function line(s: SnapshotInfo): string {
  const trigger =
    s.trigger === undefined
      ? ''
      : `${s.trigger.kind}${s.trigger.txId === undefined ? '' : ` ${s.trigger.txId}`}`;
  return `${s.id}  ${s.status.padEnd(10)}  ${trigger.padEnd(36)}  ${(s.plugins ?? []).join(',')}${s.problem === undefined ? '' : `  (${s.problem})`}`;
}

/** `opdbus snapshot list`. */
export async function list(global: GlobalOptions, output: Output): Promise<number> {
  return withSnapshots(global, output, async (snaps) => {
    const all = await snaps.list();
    if (global.json) output.out(json({ backend: snaps.backend.kind, snapshots: all }));
    else
      output.out(
        all.length === 0
          ? 'No snapshots.'
          : [`(${snaps.backend.kind} backend, ${snaps.backend.root})`, ...all.map(line)].join('\n'),
      );
    return all.some((s) => s.status === 'altered' || s.status === 'pruned')
      ? exitCodes.TAMPERED.code
      : exitCodes.OK.code;
  });
}

/** `opdbus snapshot create`. */
export async function create(global: GlobalOptions, output: Output): Promise<number> {
  const engine = await createEngine(global);
  await recoverFirst(engine, output);
  const state = await engine.query(undefined, { showSecrets: true });
  return withSnapshots(global, output, async (snaps) => {
    const meta = await snaps.create(state, { kind: 'manual' });
    if (global.json) output.out(json({ ok: true, ...meta }));
    else
      output.out(
        `Created snapshot ${meta.id} (${meta.plugins.join(', ') || 'no plugins'}; ${snaps.backend.kind}; ledger entry ${meta.ledgerIndex}).`,
      );
    return exitCodes.OK.code;
  });
}

function count(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text))
    throw new OpdbusError('OPDBUS_ERR_USAGE', `${what} must be a non-negative integer, got "${text}".`);
  return Number(text);
}

/** `opdbus snapshot prune [--dry-run]`. */
export async function prune(
  global: GlobalOptions,
  options: RetentionOptions,
  output: Output,
): Promise<number> {
  const policy: Partial<RetentionPolicy> = {};
  for (const key of ['hourly', 'daily', 'weekly', 'monthly', 'quarterly', 'yearly'] as const) {
    const n = count(options[key], `--${key}`);
    if (n !== undefined) policy[key] = n;
  }
  const minAge = count(options.minAge, '--min-age');
  if (minAge !== undefined) policy.minAgeS = minAge;
  return withSnapshots(global, output, async (snaps) => {
    const plan = await snaps.prune({ dryRun: options.dryRun === true, policy });
    if (global.json) output.out(json({ ok: true, dryRun: options.dryRun === true, ...plan }));
    else {
      const lines = [
        ...plan.keep.map((k) => `keep    ${k.id}  (${k.reasons.join(', ')})`),
        ...plan.remove.map((r) => `${options.dryRun ? 'would remove' : 'removed'}  ${r.id}`),
      ];
      output.out(lines.length === 0 ? 'No snapshots.' : lines.join('\n'));
    }
    return exitCodes.OK.code;
  });
}

/** `opdbus snapshot restore ID`: a planned apply of the snapshot's state. */
export async function restore(
  global: GlobalOptions,
  id: string,
  options: { dryRun?: boolean; confirmTimeout?: string; force?: boolean },
  output: Output,
): Promise<number> {
  const engine = await createEngine(global);
  const { state } = await withSnapshots(global, output, (snaps) => snaps.load(id));
  const doc = parseStateDocument(JSON.stringify({ version: 1, plugins: state }), {
    source: `snapshot ${id}`,
    registry: engine.registry,
  });
  if (!global.json && !options.dryRun) output.out(`Restoring snapshot ${id}:`);
  let result: ApplyResult | undefined;
  const code = await applyDocument(
    global,
    engine,
    doc,
    { ...options, onResult: (r) => (result = r) },
    output,
  );
  if (!options.dryRun && result !== undefined) {
    const applied = result;
    await withSnapshots(global, output, (snaps) =>
      snaps.recordRestore(id, {
        status: applied.status,
        ...(applied.txId === undefined ? {} : { txId: applied.txId }),
      }),
    );
  }
  return code;
}

/** `opdbus snapshot export ID FILE [--parent ID]`. */
export async function exportSnapshot(
  global: GlobalOptions,
  id: string,
  file: string,
  options: { parent?: string },
  output: Output,
): Promise<number> {
  // btrfs send opens the file itself: check first that it is not a link or a device.
  await checkOutputPath(file);
  return withSnapshots(global, output, async (snaps) => {
    await snaps.export(id, file, options.parent);
    if (global.json) output.out(json({ ok: true, id, file, parent: options.parent }));
    else
      output.out(
        `Exported snapshot ${id}${options.parent === undefined ? '' : ` (incremental from ${options.parent})`} to ${file} with btrfs send.`,
      );
    return exitCodes.OK.code;
  });
}

/** `opdbus snapshot import FILE`. */
export async function importSnapshot(global: GlobalOptions, file: string, output: Output): Promise<number> {
  return withSnapshots(global, output, async (snaps) => {
    const meta = await snaps.import(file);
    if (global.json) output.out(json({ ok: true, ...meta }));
    else
      output.out(`Imported snapshot ${meta.id} from ${file}; recorded in ledger entry ${meta.ledgerIndex}.`);
    return exitCodes.OK.code;
  });
}

/** Retention options, shared by `snapshot prune`. */
export interface RetentionOptions {
  hourly?: string;
  daily?: string;
  weekly?: string;
  monthly?: string;
  quarterly?: string;
  yearly?: string;
  minAge?: string;
  dryRun?: boolean;
}
