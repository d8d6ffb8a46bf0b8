// Shared checks for the sandbox integration tests: what exists on the host right now.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';

export { describeIf } from '../src/testing.js';

/** Whether `pid` runs (zombies count as gone). */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Mount points in this mount namespace. */
export function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => (line.split(' ')[4] ?? '').replace(/\\040/g, ' '));
}

/** Names of the network interfaces of the host namespace (this process's). */
export function hostLinks(): string[] {
  const links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{
    ifname: string;
  }>;
  return links.map((l) => l.ifname);
}

/** Names of the interfaces inside a named namespace. */
export function netnsLinks(name: string): Array<{ ifname: string; flags: string[] }> {
  return JSON.parse(execFileSync('ip', ['-n', name, '-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{
    ifname: string;
    flags: string[];
  }>;
}

/** Loop devices attached to `file` (from sysfs). */
export function loopsBackedBy(file: string): string[] {
  return readdirSync('/sys/block')
    .filter((n) => n.startsWith('loop'))
    .filter((n) => {
      try {
        return readFileSync(`/sys/block/${n}/loop/backing_file`, 'utf8').trim().startsWith(file);
      } catch {
        return false;
      }
    });
}

/** The pids whose network namespace is /run/netns/NAME's. */
export function pidsInNetns(name: string): number[] {
  return execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map(Number);
}

/** Whether a named namespace exists. */
export function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

/**
 * Wait for a condition the kernel settles asynchronously (a loop device freed after its last
 * user closed it), polling with a deadline; returns the last value. Infrastructure, not a sleep:
 * it returns as soon as the condition holds.
 */
export async function settle(check: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}
