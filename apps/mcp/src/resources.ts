import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, McpError, type ReadResourceResult } from '@modelcontextprotocol/sdk/types.js';
import { Ledger } from '@opdbus/ledger';
import { ledgerPaths } from '@opdbus/runtime';
import type { Actor } from '@opdbus/core';
import type { McpHost, SessionInfo } from './serviceTypes.js';

const json = (uri: string, value: unknown): ReadResourceResult => ({
  contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(value, null, 2) }],
});

/**
 * Register the resources: `opdbus://state/{plugin}` (observed state per plugin, secrets redacted),
 * `opdbus://schema` (the state document's JSON Schema), `opdbus://ledger/checkpoint` (the signed
 * checkpoint of the ledger) and `opdbus://transactions`. Reads are subject to the policy's
 * `resource` rules (e.g. deny `opdbus://state/users`).
 */
export function registerResources(mcp: McpHost, server: McpServer, session: SessionInfo): void {
  const names = mcp.plugins.map((p) => p.name);
  const actor = (): Actor => ({
    kind: 'mcp',
    name: `mcp:${server.server.getClientVersion()?.name ?? 'unknown-client'}${session.token === undefined ? '' : `/${session.token.name}`}`,
    uid: process.getuid?.() ?? -1,
    pid: process.pid,
  });
  const guard = (uri: string, plugin?: string): void => {
    const decision = mcp.policy.decide('resource', [
      { resource: uri, ...(plugin === undefined ? {} : { plugin }) },
    ]);
    if (decision.action !== 'allow')
      throw new McpError(
        ErrorCode.InvalidRequest,
        `OPDBUS_ERR_MCP_DENIED: the policy does not allow reading ${uri}: ${decision.reason}.`,
      );
  };

  server.registerResource(
    'state',
    new ResourceTemplate('opdbus://state/{plugin}', {
      list: () => ({
        resources: names.map((name) => ({
          uri: `opdbus://state/${name}`,
          name: `state/${name}`,
          title: `Observed ${name} state`,
          mimeType: 'application/json',
        })),
      }),
      complete: { plugin: (value) => names.filter((n) => n.startsWith(value)) },
    }),
    {
      title: 'Observed state of a plugin',
      description:
        "The plugin's section of the observed state, as a state document has it (secrets redacted).",
      mimeType: 'application/json',
    },
    async (uri, variables) => {
      const plugin = String(variables.plugin);
      if (!names.includes(plugin))
        throw new McpError(
          ErrorCode.InvalidParams,
          `OPDBUS_ERR_UNKNOWN_PLUGIN: no plugin "${plugin}"; the plugins are ${names.join(', ')}.`,
        );
      guard(uri.href, plugin);
      const observed = await mcp.engineFor(actor()).query([plugin]);
      return json(uri.href, observed[plugin] ?? null);
    },
  );

  server.registerResource(
    'schema',
    'opdbus://schema',
    {
      title: 'State document schema',
      description: 'The JSON Schema of the state document, for every registered plugin.',
      mimeType: 'application/schema+json',
    },
    (uri) => {
      guard(uri.href);
      return json(uri.href, mcp.engineFor(actor()).registry.jsonSchema());
    },
  );

  server.registerResource(
    'ledger-checkpoint',
    'opdbus://ledger/checkpoint',
    {
      title: 'Ledger checkpoint',
      description:
        "The ledger's latest signed checkpoint (C2SP tlog-checkpoint note: origin, size, root hash, Ed25519 signature).",
      mimeType: 'text/plain',
    },
    async (uri) => {
      guard(uri.href);
      const dir = ledgerPaths(mcp.options.stateDir).ledgerDir;
      if (!existsSync(join(dir, 'log')))
        return { contents: [{ uri: uri.href, mimeType: 'text/plain', text: '' }] };
      const ledger = await Ledger.open({ dir, readOnly: true });
      try {
        return { contents: [{ uri: uri.href, mimeType: 'text/plain', text: await ledger.checkpoint() }] };
      } finally {
        await ledger.close();
      }
    },
  );

  server.registerResource(
    'transactions',
    'opdbus://transactions',
    {
      title: 'Transactions',
      description: 'Every transaction in the state directory (status, plan, who, when), oldest first.',
      mimeType: 'application/json',
    },
    async (uri) => {
      guard(uri.href);
      const all = await mcp.engineFor(actor()).transactions();
      return json(
        uri.href,
        all.map((r) => ({
          txId: r.txId,
          status: r.status,
          createdAt: r.createdAt,
          updatedAt: r.updatedAt,
          actor: r.actor,
          target: r.target,
          planHash: r.plan.hash,
          changes: r.plan.changes.map((c) => ({
            plugin: c.plugin,
            resource: c.resource,
            op: c.op,
            summary: c.summary,
            risk: c.risk?.reason ?? null,
          })),
          ...(r.confirm === undefined ? {} : { confirm: r.confirm }),
          ...(r.failure === undefined ? {} : { failure: r.failure }),
          ...(r.restore === undefined ? {} : { restore: r.restore }),
        })),
      );
    },
  );
}
