/**
 * The one error class of op-dbus, and the documented codes it carries.
 *
 * Every code is listed in docs/errors.md (generated from {@link errorCodes}) and is never reused
 * for a different meaning. Protocol errors keep their native identity in `data` (the D-Bus error
 * name, the netlink errno, the OVSDB error string).
 */

/**
 * What kind of failure an error is, which decides the exit status op-dbus's commands end with
 * (the numbers are `exitCodes` of @opdbus/runtime, listed in docs/errors.md).
 */
export const exitCategories = [
  'INTERNAL',
  'INVALID_INPUT',
  'UNAVAILABLE',
  'ROLLED_BACK',
  'RESTORE_FAILED',
  'CONFLICT',
  'NOT_FOUND',
  'RISKY',
  'STATE_DIR',
  'TAMPERED',
  'COMPLIANCE_FAILED',
] as const;

/** One of {@link exitCategories}. */
export type ExitCategory = (typeof exitCategories)[number];

/** A documented error code: what it means and what the operator should do about it. */
export interface ErrorCodeInfo {
  /** One sentence: what went wrong. */
  readonly summary: string;
  /** What to do about it. */
  readonly remedy: string;
  /**
   * The kind of failure, hence the exit status. Default: `INVALID_INPUT` when the error names a
   * place in the state document (`data.path`), else `INTERNAL`.
   */
  readonly exit?: ExitCategory;
}

/** Every code defined in this process (with {@link defineErrorCodes}), shared by all copies of core. */
interface ErrorCodeRegistry {
  codes: Map<string, ErrorCodeInfo>;
  maps: WeakSet<object>;
}
const registryKey = Symbol.for('@opdbus/core.errorCodes');
function errorCodeRegistry(): ErrorCodeRegistry {
  const holder = globalThis as { [registryKey]?: ErrorCodeRegistry };
  return (holder[registryKey] ??= { codes: new Map(), maps: new WeakSet() });
}

/**
 * The framework's error codes. Plugins and libraries define their own maps with the same shape
 * (see {@link defineErrorCodes}); all of them are collected into docs/errors.md.
 */
export const errorCodes = {
  OPDBUS_ERR_INTERNAL: {
    exit: 'INTERNAL',
    summary: 'An unexpected internal error: a bug in op-dbus or a plugin.',
    remedy: 'Report it with the command, the state document and the output of `--log-level debug`.',
  },
  OPDBUS_ERR_USAGE: {
    exit: 'INVALID_INPUT',
    summary: 'The command line was not valid (unknown option, missing argument, bad value).',
    remedy: 'Run the command with `--help` and correct the arguments.',
  },
  OPDBUS_ERR_STATE_READ: {
    exit: 'INVALID_INPUT',
    summary: 'The state document could not be read from disk.',
    remedy: 'Check that the file exists and is readable by the user running op-dbus.',
  },
  OPDBUS_ERR_STATE_PARSE: {
    exit: 'INVALID_INPUT',
    summary: 'The state document is not valid YAML or JSON.',
    remedy: 'Fix the syntax at the reported line and column.',
  },
  OPDBUS_ERR_STATE_INVALID: {
    exit: 'INVALID_INPUT',
    summary: 'The state document does not match the schema (wrong type, unknown field, missing field).',
    remedy: 'Fix the value at the reported path; `opdbus schema` prints the JSON Schema for editors.',
  },
  OPDBUS_ERR_STATE_VERSION: {
    exit: 'INVALID_INPUT',
    summary: 'The state document has no `version` or a version this op-dbus does not understand.',
    remedy: 'Set `version: 1` at the top of the document.',
  },
  OPDBUS_ERR_UNKNOWN_PLUGIN: {
    exit: 'INVALID_INPUT',
    summary: 'The state document names a plugin that is not registered.',
    remedy: 'Remove the section, correct its name, or install and register the plugin.',
  },
  OPDBUS_ERR_PLUGIN_INVALID: {
    exit: 'INTERNAL',
    summary: 'A plugin object does not satisfy the plugin contract and was refused at registration.',
    remedy: 'Fix the plugin: the message names the missing or malformed member.',
  },
  OPDBUS_ERR_PLUGIN_DUPLICATE: {
    exit: 'INTERNAL',
    summary: 'Two plugins with the same name were registered.',
    remedy: 'Register each plugin once; plugin names must be unique.',
  },
  OPDBUS_ERR_PLUGIN_UNAVAILABLE: {
    exit: 'UNAVAILABLE',
    summary: 'A plugin named by the document cannot work on this host (its probe failed).',
    remedy:
      'Read the reason given (no system bus, no OVSDB socket, ...), start the service or point op-dbus at it.',
  },
  OPDBUS_ERR_PLUGIN_FAILED: {
    exit: 'INTERNAL',
    summary: 'A plugin operation (query, diff, checkpoint, watch) failed.',
    remedy: 'Read the cause; it names the plugin, the operation and the resource.',
  },
  OPDBUS_ERR_PLAN_CYCLE: {
    exit: 'INVALID_INPUT',
    summary: 'The changes of a plan depend on each other in a cycle, so no order can apply them.',
    remedy: 'Break the cycle named in the message (for example a bridge that is its own port).',
  },
  OPDBUS_ERR_PLAN_INVALID: {
    exit: 'INVALID_INPUT',
    summary:
      'A plan is malformed: a duplicate change id, a change from an unknown plugin, or a hash mismatch.',
    remedy: 'Recompute the plan from the state document instead of editing it by hand.',
  },
  OPDBUS_ERR_PLAN_CONFLICT: {
    summary: 'A plugin expanded the document into a value that contradicts what the document itself says.',
    remedy:
      'Remove one of the two: the message names the path written in the document and the plugin section that derives a different value.',
  },
  OPDBUS_ERR_RISKY_CHANGE: {
    exit: 'RISKY',
    summary: 'The plan contains a change flagged as risky (it can cut the management connection).',
    remedy: 'Apply it with `--confirm-timeout SECONDS` (commit-confirmed) or, knowing the risk, `--force`.',
  },
  OPDBUS_ERR_APPLY_FAILED: {
    exit: 'ROLLED_BACK',
    summary:
      'A change failed to apply or did not verify; the transaction was rolled back and the host is as it was.',
    remedy: 'Read the failing change and its cause, fix the document or the host, and apply again.',
  },
  OPDBUS_ERR_RESTORE_FAILED: {
    exit: 'RESTORE_FAILED',
    summary:
      'Rolling back a transaction did not bring the host back to its checkpoint; the host is in between.',
    remedy:
      'Inspect the resources listed in the message, then run `opdbus rollback TXID` again or fix them by hand.',
  },
  OPDBUS_ERR_VERIFY_FAILED: {
    exit: 'ROLLED_BACK',
    summary: 'After applying, the host did not reach the desired state within the verification window.',
    remedy:
      'Read the residual differences; something on the host fights the change (another manager, a daemon).',
  },
  OPDBUS_ERR_LOCKED: {
    exit: 'CONFLICT',
    summary: 'Another op-dbus process (or task) holds the state directory lock, and the wait for it ran out.',
    remedy:
      'Wait for it to finish: the message names its pid, command and since when. A holder that died has already released the lock (the kernel drops it with the process); never delete the lock file.',
  },
  OPDBUS_ERR_TX_NOT_FOUND: {
    exit: 'NOT_FOUND',
    summary: 'No transaction with that id exists in the state directory.',
    remedy: 'List transactions with `opdbus rollback --list` or check `--state-dir`.',
  },
  OPDBUS_ERR_TX_STATE: {
    exit: 'CONFLICT',
    summary:
      'The transaction is not in a state that allows this operation (e.g. confirming a committed one).',
    remedy: 'Check the transaction status; only pending transactions can be confirmed.',
  },
  OPDBUS_ERR_JOURNAL_CORRUPT: {
    exit: 'STATE_DIR',
    summary: 'A transaction journal in the state directory cannot be read or does not validate.',
    remedy: 'Move the named file aside after inspecting it; op-dbus will not guess what it contained.',
  },
  OPDBUS_ERR_STATE_DIR: {
    exit: 'STATE_DIR',
    summary: 'The state directory cannot be created or written.',
    remedy: 'Run as root or pass a writable `--state-dir`.',
  },
  OPDBUS_ERR_NETNS: {
    exit: 'UNAVAILABLE',
    summary: 'The network namespace named with `--netns` does not exist or cannot be entered.',
    remedy:
      'Create it (`ip netns add NAME`) or pass an existing name, a /run/netns path or a /proc/PID/ns/net path.',
  },
  OPDBUS_ERR_AUDIT_FAILED: {
    exit: 'STATE_DIR',
    summary:
      'A step could not be recorded in the audit log (the ledger): the message says whether the host changed.',
    remedy:
      'Fix the audit log (disk space, permissions; `opdbus ledger verify`). A plan that could not be recorded was not applied.',
  },
  OPDBUS_ERR_PATH_UNSAFE: {
    exit: 'INVALID_INPUT',
    summary:
      'A name from a document, the command line, an API or a file would reach outside the directory it belongs to (`..`, an absolute path, a symbolic link leading out), or is not a valid name of its kind.',
    remedy:
      'Use the plain name (e.g. `net.ipv4.ip_forward`, `nginx.service`, an interface name); the message names the input and the root it must stay in. A symbolic link inside a target root that leads out of it is refused: remove it.',
  },
  OPDBUS_ERR_LIMIT_EXCEEDED: {
    exit: 'INVALID_INPUT',
    summary:
      'An input is larger than op-dbus accepts (document size, items, a key or value, changes in one plan); it was refused before any work.',
    remedy: 'Split the document or shorten the value; docs/security.md lists every limit and why it exists.',
  },
  OPDBUS_ERR_OUTPUT_WRITE: {
    exit: 'INVALID_INPUT',
    summary: 'An output file (an export, generated code) could not be written.',
    remedy: 'Check that its directory exists and is writable, and that the disk is not full.',
  },
  OPDBUS_ERR_WATCHDOG: {
    exit: 'ROLLED_BACK',
    summary: 'The commit-confirmed watchdog could not be started.',
    remedy: 'Check the watchdog log in the state directory; the transaction was rolled back.',
  },
} as const satisfies Record<`OPDBUS_ERR_${string}`, ErrorCodeInfo>;
defineErrorCodes(errorCodes);

/** A framework error code. */
export type CoreErrorCode = keyof typeof errorCodes;

/** Any op-dbus error code: the framework's or one a plugin/library defines with the same prefix. */
export type ErrorCode = CoreErrorCode | `OPDBUS_ERR_${string}`;

/**
 * Declare a package's own error codes (checked to carry the `OPDBUS_ERR_` prefix and documentation).
 *
 * @example
 * ```ts
 * export const sysctlErrors = defineErrorCodes({
 *   OPDBUS_ERR_SYSCTL_UNKNOWN_KEY: { summary: '...', remedy: '...' },
 * });
 * ```
 */
export function defineErrorCodes<const T extends Record<`OPDBUS_ERR_${string}`, ErrorCodeInfo>>(codes: T): T {
  const registry = errorCodeRegistry();
  for (const [code, info] of Object.entries(codes)) registry.codes.set(code, info);
  registry.maps.add(codes);
  return codes;
}

/**
 * The definition of an error code defined in this process (its package was loaded), if any: what
 * it means, what to do, and its exit category.
 */
export function errorCodeInfo(code: string): ErrorCodeInfo | undefined {
  return errorCodeRegistry().codes.get(code);
}

/** Whether a value is an error map made by {@link defineErrorCodes} (how docs find a package's codes). */
export function isErrorCodeMap(value: unknown): value is Record<`OPDBUS_ERR_${string}`, ErrorCodeInfo> {
  return typeof value === 'object' && value !== null && errorCodeRegistry().maps.has(value);
}

/** Options of {@link OpdbusError}. */
export interface OpdbusErrorOptions {
  /** Machine-readable details: file, path, resource, native error identity, transaction id ... */
  data?: Record<string, unknown>;
  /** The underlying error. */
  cause?: unknown;
}

/** Marks every OpdbusError, whichever copy of @opdbus/core made it (see `Symbol.hasInstance`). */
const BRAND = Symbol.for('@opdbus/core.OpdbusError');

/**
 * The error type thrown by every op-dbus package.
 *
 * `code` is stable and documented; `message` says what was wrong, where and what to do.
 * `err instanceof OpdbusError` holds for errors made by any copy of @opdbus/core in the process
 * (a bundled app and a plugin package with its own copy, two installed versions).
 */
export class OpdbusError extends Error {
  override readonly name = 'OpdbusError';
  readonly code: ErrorCode;
  readonly data: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: OpdbusErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.data = options.data;
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && BRAND in value;
  }

  /** A JSON-friendly view (for `--json` output and journals). */
  toJSON(): { code: ErrorCode; message: string; data?: Record<string, unknown>; cause?: unknown } {
    const out: { code: ErrorCode; message: string; data?: Record<string, unknown>; cause?: unknown } = {
      code: this.code,
      message: this.message,
    };
    if (this.data !== undefined) out.data = this.data;
    if (this.cause !== undefined) out.cause = serializeCause(this.cause);
    return out;
  }
}

function serializeCause(cause: unknown): unknown {
  if (cause instanceof OpdbusError) return cause.toJSON();
  if (cause instanceof Error) {
    const out: Record<string, unknown> = { name: cause.name, message: cause.message };
    const errno = cause as NodeJS.ErrnoException;
    if (errno.code !== undefined) out.code = errno.code;
    if (errno.errno !== undefined) out.errno = errno.errno;
    return out;
  }
  return String(cause);
}

/** True when `err` is an {@link OpdbusError}, optionally with the given code. */
export function isOpdbusError(err: unknown, code?: ErrorCode): err is OpdbusError {
  return err instanceof OpdbusError && (code === undefined || err.code === code);
}

/** Wrap anything thrown into an {@link OpdbusError}, keeping one that already is. */
export function toOpdbusError(
  err: unknown,
  code: ErrorCode,
  message: string,
  data?: Record<string, unknown>,
): OpdbusError {
  if (err instanceof OpdbusError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new OpdbusError(
    code,
    `${message}: ${detail}`,
    data === undefined ? { cause: err } : { cause: err, data },
  );
}
