import { defineErrorCodes } from '@opdbus/core';

/** Error codes of opdbus-mcp (documented in docs/errors.md). */
export const mcpErrors = defineErrorCodes({
  OPDBUS_ERR_MCP_POLICY_FILE: {
    summary: 'The MCP policy file cannot be read or does not match its format.',
    remedy:
      'Fix the file at the reported path (see docs/mcp.md, "The policy file"); start without --policy for the read-only default.',
  },
  OPDBUS_ERR_MCP_DENIED: {
    summary:
      'The policy (or the read-only mode of an unauthenticated or read-scoped connection) does not allow this tool call.',
    remedy:
      'Ask the operator to allow it in the policy file (allow or ask for this tool, plugin and resource), or use a write token.',
  },
  OPDBUS_ERR_MCP_NOT_APPROVED: {
    summary: 'The policy asks a human to approve this change, and the approval was declined or cancelled.',
    remedy: 'Nothing was changed. Revise the change with the person who declined it and call the tool again.',
  },
  OPDBUS_ERR_MCP_CANNOT_ASK: {
    summary:
      'The policy asks a human to approve this change, but the MCP client cannot show an approval (no elicitation capability).',
    remedy:
      'Use a client that supports elicitation, or have the operator allow the change in the policy file; nothing was changed.',
  },
  OPDBUS_ERR_MCP_RATE_LIMITED: {
    summary: 'Too many write tool calls in this session in a short time.',
    remedy: 'Wait for the time the message names and call again; the limit is set with --write-rate.',
  },
  OPDBUS_ERR_MCP_UNSAFE_LISTEN: {
    summary:
      'opdbus-mcp was asked to listen on a non-loopback address without authentication, or with options that do not fit together.',
    remedy: 'Pass --token-file FILE (bearer tokens), or listen on 127.0.0.1 / ::1.',
  },
  OPDBUS_ERR_MCP_OAUTH_CONFIG: {
    summary:
      'The OAuth resource-server settings cannot be used: the JWKS file or URL cannot be read, or the issuer or resource is not a URL.',
    remedy:
      'Give --oauth-issuer URL and --oauth-jwks FILE|URL of the authorization server (a JWKS document, {"keys": [...]}) and, behind a proxy, --oauth-resource with the URL clients use; see docs/mcp.md.',
  },
});

/** A code of {@link mcpErrors}. */
export type McpErrorCode = keyof typeof mcpErrors;
