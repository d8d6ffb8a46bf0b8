import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'vitest';
import { createNamedNetns, deleteNamedNetns, type Netns } from '../src/index.js';

/** Tests that create namespaces need root (CAP_SYS_ADMIN). */
export const isRoot = process.getuid?.() === 0;

/**
 * `describe` for tests that need root; without root, a skipped suite, or a failing one when
 * `OPDBUS_REQUIRE` is `all` or names `root` (the rule of `@opdbus/sandbox/testing`, which this
 * package cannot import: the sandbox kit is built on it).
 */
export function describeAsRoot(name: string, fn: () => void): void {
  if (isRoot) {
    describe(name, fn);
    return;
  }
  const required = (process.env.OPDBUS_REQUIRE ?? '').split(',').map((s) => s.trim());
  if (required.includes('all') || required.includes('root')) {
    describe(name, () => {
      it('needs root', () => {
        throw new Error('root is required (OPDBUS_REQUIRE) but this process is not root');
      });
    });
    return;
  }
  describe.skip(`${name} [skipped: needs root]`, fn);
}

const created: string[] = [];

/**
 * A fresh, uniquely named network namespace (`opdbus-test-PID-HEX`), loopback up. Delete it with
 * {@link dropNetns} (or all of them with {@link dropAllNetns} in afterAll).
 */
export function freshNetns(): Netns {
  const name = `opdbus-test-${process.pid}-${randomBytes(4).toString('hex')}`;
  created.push(name);
  return createNamedNetns(name);
}

/** Delete one namespace made by {@link freshNetns}. */
export function dropNetns(ns: Netns): void {
  ns.close();
  deleteNamedNetns(ns.name);
  const i = created.indexOf(ns.name);
  if (i !== -1) created.splice(i, 1);
}

/** Delete every namespace made by {@link freshNetns} that is left. */
export function dropAllNetns(): void {
  for (const name of created.splice(0)) deleteNamedNetns(name);
}

/** `ip -n NS -j ARGS` parsed (test-only use of iproute2, to cross-check the library). */
export function ipJson<T = unknown>(ns: string, ...args: string[]): T {
  return JSON.parse(
    execFileSync('ip', ['-n', ns, '-j', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 }),
  ) as T;
}

/** `ip -n NS ARGS` (test-only). */
export function ip(ns: string, ...args: string[]): string {
  return execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
}

/** Run a batch of `ip` commands inside the namespace, synchronously (blocking the event loop). */
export function ipBatch(ns: string, lines: readonly string[]): void {
  execFileSync('ip', ['-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

/** Resolve once `check` returns a value, re-checking on each event of `subscribe`; rejects after `ms`. */
export function waitFor<T>(
  subscribe: (wake: () => void) => () => void,
  check: () => T | undefined,
  ms: number,
  what: string,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const first = check();
    if (first !== undefined) {
      resolve(first);
      return;
    }
    let unsubscribe = (): void => undefined;
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    unsubscribe = subscribe(() => {
      const value = check();
      if (value === undefined) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(value);
    });
  });
}
