import { OpdbusError } from '@opdbus/core';
import { exitCodeFor, exitCodes } from './exitCodes.js';
import type { Output } from './io.js';

/** Print an error (human or JSON) and return the exit code for it. */
export function reportError(err: unknown, json: boolean | undefined, output: Output): number {
  if (err instanceof OpdbusError) {
    if (json) output.out(JSON.stringify({ ok: false, error: err.toJSON() }, null, 2));
    else output.err(`opdbus: ${err.message}\n(${err.code})`);
    return exitCodeFor(err.code, err.data);
  }
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  if (json)
    output.out(JSON.stringify({ ok: false, error: { code: 'OPDBUS_ERR_INTERNAL', message } }, null, 2));
  else output.err(`opdbus: internal error: ${message}\n(OPDBUS_ERR_INTERNAL)`);
  return exitCodes.INTERNAL.code;
}
