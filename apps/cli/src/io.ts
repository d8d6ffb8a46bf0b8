// What every command shares and `opdbus --version` / `--help` need: global options, output and
// the default state directory. Kept free of imports (but node:fs, which Node has loaded already)
// so that the CLI starts fast.
import { writeSync } from 'node:fs';

/** Options every command takes. */
export interface GlobalOptions {
  netns?: string;
  stateDir: string;
  bus?: string;
  ovsdb?: string;
  root?: string;
  json?: boolean;
  logLevel: string;
  /** `--plugin SPEC` (repeatable): plugin packages to load, npm names or directories. */
  plugin?: string[];
  /** `--config FILE`: the configuration file (default /etc/opdbus/config.yaml when it exists). */
  config?: string;
}

/** The default state directory (or $OPDBUS_STATE_DIR). */
export const defaultStateDir = process.env.OPDBUS_STATE_DIR ?? '/var/lib/opdbus';

/** Where human and machine output go; tests and the demo can capture them. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}

/** Per file descriptor: whether output goes through its stream from now on (see {@link writeLine}). */
const viaStream: Record<1 | 2, boolean> = { 1: false, 2: false };

/**
 * Write `text` (with a final newline) to standard output or error with write(2) itself:
 * `process.stdout` is a stream whose first use loads Node's stream modules (milliseconds at each
 * command's start), and it writes files, pipes and terminals synchronously anyway. A descriptor
 * that would block (a non-blocking pipe that is full) hands the rest, and all later output, to
 * the stream, which keeps the order and waits; a reader that went away (EPIPE) ends the output.
 */
function writeLine(fd: 1 | 2, text: string): void {
  const line = text.endsWith('\n') ? text : `${text}\n`;
  const stream = (): NodeJS.WriteStream => (fd === 1 ? process.stdout : process.stderr);
  if (viaStream[fd]) {
    stream().write(line);
    return;
  }
  const bytes = Buffer.from(line);
  let offset = 0;
  try {
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') return;
    if (code !== 'EAGAIN') throw err;
    viaStream[fd] = true;
    stream().write(bytes.subarray(offset));
  }
}

export const stdio: Output = {
  out: (text) => writeLine(1, text),
  err: (text) => writeLine(2, text),
};
