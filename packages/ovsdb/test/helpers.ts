// Shared helpers of the integration tests: real ovsdb-server instances from @opdbus/sandbox,
// ovs-vsctl for cross-checks (test-only), and waiting for events with deadlines.
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { OvsSandbox } from '@opdbus/sandbox';

const run = promisify(execFile);

export { describeIf } from '@opdbus/sandbox/testing';

/** ovs-vsctl against a sandbox (never waits for ovs-vswitchd unless asked). */
export async function vsctl(ovs: OvsSandbox, ...args: string[]): Promise<string> {
  const { stdout } = await run('ovs-vsctl', [`--db=${ovs.address}`, '--timeout=20', ...args]);
  return stdout.trim();
}

/** ovs-vsctl, synchronously (for use inside an event handler, before anything else can run). */
export function vsctlSync(ovs: OvsSandbox, ...args: string[]): string {
  return execFileSync('ovs-vsctl', [`--db=${ovs.address}`, '--timeout=20', ...args], {
    encoding: 'utf8',
  }).trim();
}

/** ovs-appctl to the sandbox's ovsdb-server. */
export async function serverCtl(ovs: OvsSandbox, ...args: string[]): Promise<string> {
  const { stdout } = await run('ovs-appctl', ['-t', join(ovs.dir, 'ovsdb-server.ctl'), ...args], {
    env: { ...process.env, ...ovs.env },
  });
  return stdout.trim();
}

/** Resolve with the first value `subscribe` delivers that `accept` takes, or fail after `timeoutMs`. */
export function nextEvent<T>(
  subscribe: (listener: (value: T) => void) => () => void,
  accept: (value: T) => boolean = () => true,
  timeoutMs = 10_000,
  what = 'the event',
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const off = subscribe((value) => {
      if (!accept(value)) return;
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
}
