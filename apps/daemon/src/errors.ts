import { defineErrorCodes } from '@opdbus/core';

/** Error codes of opdbusd's HTTP API, sent as `{ "error": { "code", "message" } }` (documented in docs/errors.md). */
export const daemonErrors = defineErrorCodes({
  OPDBUS_ERR_API_UNAUTHORIZED: {
    summary:
      "An API request without a bearer token, or with one that is not in the daemon's token file (HTTP 401).",
    remedy: 'Send `Authorization: Bearer TOKEN` with a token from the file given to `opdbusd --token-file`.',
  },
  OPDBUS_ERR_API_FORBIDDEN: {
    summary:
      'An API request the token may not make (a read token on a write route), or a state-changing request from another origin (HTTP 403).',
    remedy:
      "Use a token with the `write` scope; send state-changing requests from the daemon's own origin or without an Origin header.",
  },
  OPDBUS_ERR_API_RATE_LIMITED: {
    summary: 'Too many failed authentications from one peer within a minute (HTTP 429).',
    remedy: 'Wait for the time the message gives, then use a valid token.',
  },
  OPDBUS_ERR_API_BAD_REQUEST: {
    summary: 'An API request whose body or query does not have the documented shape (HTTP 400).',
    remedy: 'Compare the request with `/openapi.json`; the message names the field.',
  },
  OPDBUS_ERR_ANOMALY_REFUSED: {
    summary:
      'A planned change scored at or above the anomaly threshold, and the daemon runs with `--anomaly-plan refuse` (HTTP 409); nothing was changed.',
    remedy:
      'Have an operator review the change the message names; if it is routine, retrain the model (`opdbus anomaly train --from-ledger`) or apply it outside the daemon.',
  },
  OPDBUS_ERR_ANOMALY_ASK: {
    summary:
      'A planned change scored at or above the anomaly threshold, and the daemon runs with `--anomaly-plan ask` (HTTP 409); nothing was changed.',
    remedy:
      'Review the changes and reasons the message names, then send the apply again with `"acknowledgeAnomalies": true`.',
  },
  OPDBUS_ERR_CHAT_CONFIG: {
    summary:
      'The Chat page is misconfigured: `--chat-endpoint` is not an http(s) URL, or `--chat-key-file` is missing, empty or readable by others.',
    remedy:
      'Give `--chat-endpoint` the chat-completions URL and `--chat-model` the model; put the API key alone in a file with mode 0600 for `--chat-key-file`.',
  },
  OPDBUS_ERR_CHAT_NOT_CONFIGURED: {
    summary: 'A chat request to a daemon started without `--chat-endpoint` (HTTP 503).',
    remedy:
      'Start opdbusd with `--chat-endpoint URL --chat-model NAME [--chat-key-file FILE]` (see docs/dashboard.md).',
  },
  OPDBUS_ERR_CHAT_ENDPOINT: {
    summary:
      'The chat-completions endpoint could not be reached, or answered an error or something that is not a chat completion (HTTP 502).',
    remedy:
      'Check the endpoint URL, the key and the model name; the message quotes what the endpoint answered.',
  },
  OPDBUS_ERR_CHAT_NO_APPROVAL: {
    summary:
      "An approve or deny for a chat tool call that is not waiting (already answered, expired after 10 minutes, or another token's) (HTTP 404).",
    remedy: 'Send the message again; the model will ask for the tool call again.',
  },
  OPDBUS_ERR_CHAT_RATE_LIMITED: {
    summary: 'Too many chat requests from one token within a minute (HTTP 429).',
    remedy: 'Wait for the time the message gives.',
  },
  OPDBUS_ERR_CHAT_BUSY: {
    summary:
      'Too many chat conversations wait for approvals at once, or the one a message goes on with waits for one (HTTP 429).',
    remedy: 'Approve or deny the waiting tool calls on the Chat page first.',
  },
});

/** A code of {@link daemonErrors}. */
export type DaemonErrorCode = keyof typeof daemonErrors;
