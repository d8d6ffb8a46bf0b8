/** Options of one request. */
export interface RequestOptions {
  /** Reject with `OPDBUS_ERR_OVSDB_TIMEOUT` after this many ms (default: the client's `requestTimeoutMs`). */
  timeoutMs?: number;
  /** Abort: a transaction is canceled on the server (`cancel`); other requests stop waiting. */
  signal?: AbortSignal;
}
