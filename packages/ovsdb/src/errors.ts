import { defineErrorCodes } from '@opdbus/core';

/**
 * Error codes of @opdbus/ovsdb (documented in docs/errors.md). Errors that come from the server
 * keep OVSDB's own error string in `data.error` (e.g. `"constraint violation"`, `"timed out"`,
 * `"unknown method"`) and its `details`; transaction errors also carry `data.operationIndex`.
 */
export const ovsdbErrors = defineErrorCodes({
  OPDBUS_ERR_OVSDB_ADDRESS: {
    exit: 'INVALID_INPUT',
    summary:
      'An OVSDB address is not valid: it must be unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT (ovs-vsctl --db syntax).',
    remedy: 'Correct the address, e.g. `unix:/run/openvswitch/db.sock` or `tcp:127.0.0.1:6640`.',
  },
  OPDBUS_ERR_OVSDB_CONNECT: {
    exit: 'UNAVAILABLE',
    summary: 'The OVSDB server could not be reached (no socket, connection refused, TLS handshake failed).',
    remedy:
      'Check that ovsdb-server runs and listens on that address (`ovs-appctl -t ovsdb-server ovsdb-server/list-remotes`), and the permissions of its socket.',
  },
  OPDBUS_ERR_OVSDB_DISCONNECTED: {
    summary:
      'The connection to the OVSDB server was lost while a request was outstanding; a transaction in flight may or may not have committed.',
    remedy:
      'Retry once the client has reconnected; re-read the rows a lost transaction touched before assuming either outcome.',
  },
  OPDBUS_ERR_OVSDB_CLOSED: {
    summary: 'The OVSDB client was closed; no more requests can be sent on it.',
    remedy: 'Open a new client with `OvsdbClient.connect()`.',
  },
  OPDBUS_ERR_OVSDB_TIMEOUT: {
    summary: 'The OVSDB server did not answer a request (or an echo probe) in time.',
    remedy:
      'Check the load of ovsdb-server, or raise `timeoutMs`; a transaction that timed out may still commit.',
  },
  OPDBUS_ERR_OVSDB_PROTOCOL: {
    summary:
      'The peer sent something that is not OVSDB JSON-RPC (bad JSON, an unexpected reply, a malformed update).',
    remedy: 'Check that the address points at an ovsdb-server and not another service.',
  },
  OPDBUS_ERR_OVSDB_RPC: {
    summary:
      'The OVSDB server refused a request; `data.error` holds its error string (e.g. "unknown database", "unknown monitor").',
    remedy: 'Read the server error and details; correct the database name, monitor id or parameters.',
  },
  OPDBUS_ERR_OVSDB_TRANSACTION: {
    summary:
      'An OVSDB transaction failed; `data.error` is the server error (e.g. "constraint violation", "timed out", "referential integrity violation") and `data.operationIndex` the failing operation.',
    remedy:
      'Read the error, its details and the failing operation; "timed out" on a `wait` means the rows changed under you: re-read and retry.',
  },
  OPDBUS_ERR_OVSDB_CANCELED: {
    summary:
      'A transaction was canceled (by the caller\'s AbortSignal, which sent OVSDB "cancel") before it completed.',
    remedy: 'Nothing was committed; run it again if it is still wanted.',
  },
  OPDBUS_ERR_OVSDB_SCHEMA: {
    exit: 'INVALID_INPUT',
    summary: 'An OVSDB schema is malformed, or names a table or column that does not exist.',
    remedy:
      'Check the schema file (`ovsdb-tool checksum FILE` validates it) or the table and column names used against `ovsdb-client get-schema`.',
  },
  OPDBUS_ERR_OVSDB_VALUE: {
    summary:
      'A value does not fit the column it is written to (wrong type, not in the enum, out of range, wrong set size); the message names table, column and value.',
    remedy: 'Correct the value to match the column type in the schema (`ovsdb-client get-schema-columns` …).',
  },
});

/** An error code of @opdbus/ovsdb. */
export type OvsdbErrorCode = keyof typeof ovsdbErrors;
