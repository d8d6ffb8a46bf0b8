import {
  OpdbusError,
  type ApplyOptions,
  type ApplyResult,
  type Engine,
  type StateDocument,
} from '@opdbus/core';
import { exitCodes } from '../exitCodes.js';
import { formatEvent, formatPlan } from '../format.js';
import { createEngine, ensureStateDir, recoverFirst, type GlobalOptions, type Output } from '../runtime.js';
import { documentInput, inDocument } from './document.js';

export interface ApplyCommandOptions {
  dryRun?: boolean;
  confirmTimeout?: string;
  force?: boolean;
  /** Called with the result of a successful apply (used by `snapshot restore` to record it). */
  onResult?: (result: ApplyResult) => void;
}

function parseTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 86_400) {
    throw new OpdbusError(
      'OPDBUS_ERR_USAGE',
      `--confirm-timeout takes seconds between 1 and 86400, got "${text}".`,
    );
  }
  return seconds;
}

/** `opdbus apply FILE|DIR`: apply the document (a directory's documents merged) as one transaction. */
export async function apply(
  global: GlobalOptions,
  file: string,
  options: ApplyCommandOptions,
  output: Output,
): Promise<number> {
  const input = await documentInput(global, file);
  // Only the plugins the document names are loaded.
  const engine = await createEngine(global, input.plugins);
  const doc = await input.load(engine.registry);
  return applyDocument(global, engine, doc, options, output);
}

/**
 * Apply a parsed document with the engine as one transaction (or only show the plan with
 * `dryRun`), printing progress; used by `apply` and `snapshot restore`.
 */
export async function applyDocument(
  global: GlobalOptions,
  engine: Engine,
  doc: StateDocument,
  options: ApplyCommandOptions,
  output: Output,
): Promise<number> {
  const confirmTimeoutS = parseTimeout(options.confirmTimeout);
  if (options.dryRun) {
    await recoverFirst(engine, output);
    const { plan, notes } = await inDocument(doc, () => engine.plan(doc));
    if (global.json)
      output.out(
        JSON.stringify({ ok: true, dryRun: true, changes: plan.changes.length, plan, notes }, null, 2),
      );
    else output.out(formatPlan(plan, notes));
    return plan.changes.length === 0 ? exitCodes.OK.code : exitCodes.CHANGES_PENDING.code;
  }
  ensureStateDir(global.stateDir);

  let total = 0;
  const stop = engine.events.on((event) => {
    if (event.type === 'plan.created') {
      total = event.changes;
      return;
    }
    if (global.json) return;
    const line = formatEvent(event, total);
    if (line !== undefined) output.out(line);
  });
  // SIGINT/SIGTERM during an apply: stop between changes and roll back, then exit.
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const applyOptions: ApplyOptions = { signal: controller.signal };
  if (confirmTimeoutS !== undefined) applyOptions.confirmTimeoutS = confirmTimeoutS;
  if (options.force) applyOptions.force = true;
  try {
    const result = await inDocument(doc, () => engine.apply(doc, applyOptions));
    options.onResult?.(result);
    if (global.json) {
      output.out(
        JSON.stringify(
          {
            ok: true,
            status: result.status,
            txId: result.txId,
            deadline: result.deadline,
            changes: result.plan.changes.length,
            plan: result.plan,
          },
          null,
          2,
        ),
      );
    } else if (result.status === 'no-changes') {
      output.out('No changes: the host already matches the document.');
    } else if (result.status === 'pending-confirm') {
      output.out(
        `Applied and verified. Transaction ${result.txId} is PENDING: run \`opdbus confirm ${result.txId}\` before ${result.deadline}, or it is rolled back.`,
      );
    } else {
      output.out(`Committed transaction ${result.txId}.`);
    }
    return exitCodes.OK.code;
  } catch (err) {
    if (controller.signal.aborted && err instanceof OpdbusError && err.code === 'OPDBUS_ERR_APPLY_FAILED') {
      output.err(`opdbus: ${err.message}`);
      return exitCodes.INTERRUPTED.code;
    }
    throw err;
  } finally {
    stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
