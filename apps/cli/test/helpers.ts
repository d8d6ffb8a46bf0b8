import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { watch } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isAlive, type ProcessIdentity } from '@opdbus/core';

/** The built CLI (the test command builds before testing). */
export const cliBin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `opdbus ARGS` to completion. */
export function runCli(
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [cliBin, ...args],
      { env: { ...process.env, ...options.env }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        if (error !== null && typeof error.code !== 'number')
          reject(new Error(error.message, { cause: error }));
        else resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/**
 * Wait until a running child's stdout matches `pattern` (resolves with what it printed so far);
 * rejects with its stdout and stderr when it exits first.
 */
export function waitForOutput(child: ChildProcess, pattern: RegExp, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onErr = (chunk: Buffer): void => void (text += chunk.toString());
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      if (pattern.test(text)) {
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onErr);
        resolve(text);
      }
    };
    child.stderr?.on('data', onErr);
    child.stdout?.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`${what} exited (${code}) before printing ${pattern}: ${text}`)),
    );
  });
}

/** Start `opdbus ARGS` and resolve once a stdout line matches `pattern`. */
export function startCliUntil(
  args: readonly string[],
  pattern: RegExp,
): Promise<{ child: ChildProcess; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (pattern.test(output)) resolve({ child, output });
    });
    child.once('exit', (code) =>
      reject(new Error(`opdbus exited (${code}) before printing ${pattern}:\n${output}\n${stderr}`)),
    );
  });
}

/**
 * Wait until `check` holds, re-checking whenever something changes in `dir` (inotify), with a
 * deadline. No fixed sleeps: the check runs on every change event.
 */
export async function waitForChange<T>(
  dir: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const first = await check();
  if (first !== undefined) return first;
  return new Promise<T>((resolve, reject) => {
    let busy = false;
    let again = false;
    const watcher = watch(dir, { recursive: false });
    const timer = setTimeout(() => {
      watcher.close();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const run = (): void => {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      check().then(
        (value) => {
          busy = false;
          if (value !== undefined) {
            clearTimeout(timer);
            watcher.close();
            resolve(value);
          } else if (again) {
            again = false;
            run();
          }
        },
        (err: unknown) => {
          clearTimeout(timer);
          watcher.close();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    };
    watcher.on('change', run);
  });
}

/**
 * Wait until a process (e.g. a detached watchdog) has exited, with a deadline. A process's exit
 * writes nothing to watch, so this polls its liveness every 25 ms.
 */
export async function waitForExit(
  identity: ProcessIdentity | undefined,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(identity)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} to exit`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
