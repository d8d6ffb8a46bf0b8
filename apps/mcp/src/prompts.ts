import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { McpHost } from './serviceTypes.js';

/**
 * Register the prompts: `diagnose_drift`, `plan_change_safely` and `explain_transaction`. Each
 * is a recipe in terms of this server's tools, so an agent works the way an operator would.
 */
export function registerPrompts(mcp: McpHost, server: McpServer): void {
  const names = mcp.plugins.map((p) => p.name).join(', ');

  server.registerPrompt(
    'diagnose_drift',
    {
      title: 'Diagnose drift',
      description:
        'Find where the host differs from its declared state document, explain why, and propose a fix.',
      argsSchema: {
        document: z.string().describe('the declared state document (YAML or JSON)'),
      },
    },
    ({ document }) => ({
      messages: [
        {
          role: 'user',
          content: {
            type: 'text',
            text: [
              'The host below is managed by op-dbus from this declared state document:',
              '```yaml',
              document,
              '```',
              '1. Call the `plan` tool with this document. Each change it lists is drift: the host differs from the document there. No changes means no drift.',
              '2. For each change, read the observed state of its plugin (`query` with `plugins`, or the opdbus://state/{plugin} resource) and explain what differs, in words an operator understands.',
              '3. Look at `transactions` and `ledger_entries` for recent changes to the same resources: say whether the drift came from a recorded transaction (and which) or from outside op-dbus.',
              '4. Propose the fix: either apply the document (name the risky changes: they are applied commit-confirmed), or change the document if the host is right. Do not apply without saying so first.',
            ].join('\n'),
          },
        },
      ],
    }),
  );

  server.registerPrompt(
    'plan_change_safely',
    {
      title: 'Plan a change safely',
      description:
        'Turn a requested change into a minimal state document, review its plan and risks, then apply it commit-confirmed.',
      argsSchema: {
        change: z.string().describe('what should change, in words (e.g. "enable IPv4 forwarding")'),
      },
    },
    ({ change }) => ({
      messages: [
        {
          role: 'user',
          content: {
            type: 'text',
            text: [
              `Make this change on the host with op-dbus: ${change}`,
              '',
              `The plugins are: ${names}. The JSON Schema of a state document is the opdbus://schema resource.`,
              '1. Read the current state of the plugins involved (`query` with `plugins`).',
              '2. Write the smallest state document (`version: 1`, `plugins:`) that names only what must change; op-dbus manages only what a document names, and removal is explicit (`state: absent`).',
              '3. Call `plan` and review every change: is it what was asked, nothing more? Report the risky ones (they can cut the management connection).',
              '4. Call `apply` with the document and the planHash from the plan. It is commit-confirmed: it stays pending until confirmed. The operator may be asked to approve.',
              '5. Check the result (`query`, and whatever the change was for). If it works, call `confirm` with the txId; if not, call `rollback`.',
            ].join('\n'),
          },
        },
      ],
    }),
  );

  server.registerPrompt(
    'explain_transaction',
    {
      title: 'Explain this transaction',
      description:
        'Explain what a transaction changed, who made it, how it ended, and where the ledger proves it.',
      argsSchema: {
        txId: z.string().describe('the transaction id (from `transactions`)'),
      },
    },
    ({ txId }) => ({
      messages: [
        {
          role: 'user',
          content: {
            type: 'text',
            text: [
              `Explain transaction ${txId} to an operator:`,
              '1. Find it in the opdbus://transactions resource (or the `transactions` tool): its changes in plan order, who made it (the actor), when, and its status (committed, pending-confirm, rolled-back, restore-failed) and why.',
              '2. Find its ledger entries with `ledger_entries` (kinds plan, apply, confirm, rollback with this txId, and the mcp.call entries around it) and get an inclusion proof of its apply entry with `ledger_proof`.',
              '3. Say in plain words what changed on the host, whether it is still in effect, and how to undo it if needed (`rollback`).',
            ].join('\n'),
          },
        },
      ],
    }),
  );
}
