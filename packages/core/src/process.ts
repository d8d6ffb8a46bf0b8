import { readFileSync } from 'node:fs';

/**
 * A process identity that survives pid reuse: the pid plus the kernel's start time of the
 * process (field 22 of /proc/PID/stat, in clock ticks since boot).
 */
export interface ProcessIdentity {
  pid: number;
  /** `null` when /proc could not be read (then only the pid is compared). */
  startTime: string | null;
}

/** The start time of `pid` from /proc/PID/stat, or null if it is gone or unreadable. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

/** The identity of the current process. */
export function selfIdentity(): ProcessIdentity {
  return { pid: process.pid, startTime: processStartTime(process.pid) };
}

/** Whether the process with this identity still runs (and is not a zombie or a reused pid). */
export function isAlive(identity: ProcessIdentity | undefined): boolean {
  if (identity === undefined) return false;
  try {
    process.kill(identity.pid, 0);
  } catch (err) {
    // EPERM means it exists but belongs to someone else; ESRCH means it is gone.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let stat: string;
  try {
    stat = readFileSync(`/proc/${identity.pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (rest[0] === 'Z' || rest[0] === 'X') return false;
  return identity.startTime === null || rest[19] === identity.startTime;
}
