import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StateDir, processStartTime, type ProcessIdentity } from '@opdbus/core';
import { isPathSpec, type RuntimeOptions } from './options.js';

/**
 * The path of the watchdog's entry point (`opdbus-watchdog`), run with this Node: beside this
 * module once built; from sources (tests, `@opdbus/source`), the built one in dist/.
 */
export const watchdogEntry: string =
  [
    fileURLToPath(new URL('./watchdogMain.js', import.meta.url)),
    fileURLToPath(new URL('../dist/watchdogMain.js', import.meta.url)),
  ].find((path) => existsSync(path)) ?? fileURLToPath(new URL('./watchdogMain.js', import.meta.url));

/**
 * Start the commit-confirmed watchdog for `txId`: `opdbus-watchdog` in a new session, detached
 * from this process and its terminal, so SIGKILL of the app (or its whole process group) does not
 * reach it. It reports "ready" over IPC before the first change is applied; its IPC channel
 * closing tells it this process is gone. The watchdog reads the transaction's target from its
 * journal, so only the state directory, the log level and the plugin packages (`--plugin`,
 * `--config`; directories made absolute) are passed. It logs at `info` (or `debug`,
 * `trace` when asked) to STATE_DIR/transactions/TXID.watchdog.log.
 *
 * This is what {@link createEngine} passes to the engine as `spawnWatchdog`.
 */
export async function spawnWatchdog(
  options: Pick<RuntimeOptions, 'stateDir' | 'logLevel' | 'plugin' | 'config'>,
  txId: string,
): Promise<ProcessIdentity> {
  const state = new StateDir(options.stateDir);
  const logFd = openSync(state.watchdogLogPath(txId), 'a', 0o600);
  try {
    const args = [
      watchdogEntry,
      '--state-dir',
      options.stateDir,
      '--log-level',
      // Its own log file, read after the fact: at least `info`, more when asked.
      ['debug', 'trace'].includes(options.logLevel) ? options.logLevel : 'info',
      // The plugins the transaction may have changed resources of, so that it can restore them.
      ...(options.plugin ?? []).flatMap((spec) => ['--plugin', isPathSpec(spec) ? resolve(spec) : spec]),
      ...(options.config === undefined ? [] : ['--config', resolve(options.config)]),
      txId,
    ];
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', logFd, logFd, 'ipc'] });
    const pid = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('the watchdog did not report ready within 15 s')),
        15_000,
      );
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(
          new Error(
            `the watchdog exited early (${signal ?? `code ${code}`}); see ${state.watchdogLogPath(txId)}`,
          ),
        );
      });
      child.once('message', (message) => {
        clearTimeout(timer);
        if (message === 'ready' && child.pid !== undefined) resolve(child.pid);
        else reject(new Error(`unexpected message from the watchdog: ${JSON.stringify(message)}`));
      });
    });
    child.removeAllListeners('exit');
    child.removeAllListeners('error');
    child.channel?.unref();
    child.unref();
    return { pid, startTime: processStartTime(pid) };
  } finally {
    closeSync(logFd);
  }
}
