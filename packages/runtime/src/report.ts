import { OpdbusError } from '@opdbus/core';
import { exitCodeFor, exitCodes } from './exitCodes.js';

/** Where human and machine output go; tests and embedding tools can capture them. */
export interface Output {
  /** A line (or block) of the command's result, on stdout. */
  out(text: string): void;
  /** A diagnostic line, on stderr. */
  err(text: string): void;
}

/** {@link Output} on the process's stdout and stderr, each text ending in a newline. */
export const stdio: Output = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
};

/**
 * Print an error (human, or JSON on stdout with `json`) and return the exit code for it.
 * An {@link OpdbusError} prints its message and code; anything else is an internal error with
 * its stack.
 *
 * @param app - the name the human line starts with (`opdbus`, `opdbusd` …)
 */
export function reportError(err: unknown, json: boolean | undefined, output: Output, app = 'opdbus'): number {
  if (err instanceof OpdbusError) {
    if (json) output.out(JSON.stringify({ ok: false, error: err.toJSON() }, null, 2));
    else output.err(`${app}: ${err.message}\n(${err.code})`);
    return exitCodeFor(err.code, err.data);
  }
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  if (json)
    output.out(JSON.stringify({ ok: false, error: { code: 'OPDBUS_ERR_INTERNAL', message } }, null, 2));
  else output.err(`${app}: internal error: ${message}\n(OPDBUS_ERR_INTERNAL)`);
  return exitCodes.INTERNAL.code;
}

/** {@link reportError} on stderr, for a process's last words. */
export function reportFatal(app: string, err: unknown): number {
  return reportError(err, false, stdio, app);
}
