import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { parse as parseYaml } from 'yaml';
import {
  OpdbusError,
  parseStateDocument,
  clipText,
  type Change,
  type Engine,
  type Plan,
  type TransactionRecord,
} from '@opdbus/core';
import { Ledger, SnapshotManager, readChangeEvents, verifyInclusion, verifyLedger } from '@opdbus/ledger';
import { numaSectionSchema, readTopology, resolvePlacements } from '@opdbus/numa';
import { ledgerPaths } from '@opdbus/runtime';
import { z } from 'zod';
import type { PolicySubject } from './policy.js';
import type {
  CallContext,
  Governed,
  McpHost,
  SessionInfo,
  SessionState,
  ToolExtra,
  ToolOutput,
} from './serviceTypes.js';

const changeSchema = z.object({
  id: z.string(),
  plugin: z.string(),
  resource: z.string(),
  op: z.enum(['create', 'update', 'delete']),
  summary: z.string(),
  risk: z.string().nullable().describe('why the change can cut the management connection, or null'),
  dependsOn: z.array(z.string()),
});

const txSchema = z.object({
  txId: z.string(),
  status: z.string(),
  createdAt: z.string(),
  actor: z.string(),
  changes: z.number().int(),
  deadline: z.string().optional().describe('pending-confirm: roll back at this time unless confirmed'),
  reason: z.string().optional().describe('rolled back: why'),
});

function changeView(c: Change): z.output<typeof changeSchema> {
  return {
    id: c.id,
    plugin: c.plugin,
    resource: c.resource,
    op: c.op,
    summary: c.summary,
    risk: c.risk?.reason ?? null,
    dependsOn: c.dependsOn,
  };
}

function txView(r: TransactionRecord): z.output<typeof txSchema> {
  return {
    txId: r.txId,
    status: r.status,
    createdAt: r.createdAt,
    actor: r.actor.name,
    changes: r.plan.changes.length,
    ...(r.confirm?.deadline === undefined || r.status !== 'pending-confirm'
      ? {}
      : { deadline: r.confirm.deadline }),
    ...(r.restore === undefined ? {} : { reason: r.restore.reason }),
  };
}

function subjectsOf(changes: readonly Change[]): PolicySubject[] {
  return changes.map((c) => ({ plugin: c.plugin, resource: c.resource, risky: c.risk !== undefined }));
}

function target(engine: Engine): string {
  const t = engine.target;
  const parts = [
    t.netns === undefined ? undefined : `netns ${t.netns}`,
    t.busAddress === undefined ? undefined : `bus ${t.busAddress}`,
    t.ovsdbAddress === undefined ? undefined : `ovsdb ${t.ovsdbAddress}`,
    t.root === undefined ? undefined : `root ${t.root}`,
  ].filter((p) => p !== undefined);
  return parts.length === 0 ? 'this host' : parts.join(', ');
}

/** The plan as people read it in an approval request (at most 40 changes listed). */
export function formatPlanPreview(plan: Plan, engine: Engine, tail: string[] = []): string {
  const lines = [`Plan ${plan.hash.slice(0, 12)} on ${target(engine)}: ${plan.changes.length} change(s)`];
  plan.changes.slice(0, 40).forEach((c, i) => {
    lines.push(
      `${String(i + 1).padStart(3)}. ${c.plugin} ${c.op} ${c.resource}: ${clipText(c.summary, 200)}${c.risk === undefined ? '' : `  [RISK: ${c.risk.reason}]`}`,
    );
  });
  if (plan.changes.length > 40) lines.push(`  … and ${plan.changes.length - 40} more`);
  return [...lines, ...tail].join('\n');
}

const readOnly = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false };

/**
 * Register the op-dbus tools on a session's server: query, plan, apply, confirm, rollback,
 * transactions, ledger_entries, ledger_verify, ledger_proof, snapshots_list, numa_topology.
 */
export function registerTools(
  mcp: McpHost,
  server: McpServer,
  session: SessionInfo,
  state: SessionState,
): void {
  const pluginNames = mcp.plugins.map((p) => p.name);
  const serve =
    <A>(
      tool: string,
      govern: (args: A, ctx: CallContext) => Promise<Governed>,
      run: (args: A, ctx: CallContext) => Promise<ToolOutput>,
    ) =>
    (args: A, extra: ToolExtra) =>
      mcp.call(
        server,
        session,
        state,
        tool,
        args,
        extra,
        (ctx) => govern(args, ctx),
        (ctx) => run(args, ctx),
      );
  const ungoverned = (): Promise<Governed> => Promise.resolve({ subjects: [] });

  server.registerTool(
    'query',
    {
      title: 'Query observed state',
      description:
        'The observed state of the host as a state document section per plugin (secrets redacted). Scope it with `plugins`; without, every available plugin is read and the unavailable ones are listed with the reason.',
      inputSchema: {
        plugins: z
          .array(z.string())
          .max(64)
          .optional()
          .describe(`plugins to read (default: all): ${pluginNames.join(', ')}`),
        all: z.boolean().optional().describe('also read-only and volatile values a document cannot set'),
      },
      outputSchema: {
        plugins: z.record(z.string(), z.unknown()),
        unavailable: z.record(z.string(), z.string()),
      },
      annotations: { title: 'Query observed state', ...readOnly },
    },
    serve(
      'query',
      (args: { plugins?: string[] | undefined }) =>
        Promise.resolve({ subjects: (args.plugins ?? pluginNames).map((plugin) => ({ plugin })) }),
      async (args: { plugins?: string[] | undefined; all?: boolean | undefined }, { engine }) => {
        const report = await engine.queryReport(args.plugins, { all: args.all === true });
        return {
          structured: { plugins: report.plugins, unavailable: report.unavailable },
          summary: { plugins: Object.keys(report.plugins) },
        };
      },
    ),
  );

  server.registerTool(
    'plan',
    {
      title: 'Plan a state document',
      description:
        'Compute the ordered plan that takes the host to a state document (YAML or JSON, `version: 1` and `plugins:`): each change with its resource, dependencies and risk. Changes nothing. Only what the document names is managed; removal is explicit (`state: absent`). Also says what the policy would do with an apply of it.',
      inputSchema: {
        document: z
          .string()
          .max(4 * 1024 * 1024)
          .describe('the state document, YAML or JSON'),
      },
      outputSchema: {
        planHash: z.string(),
        changes: z.array(changeSchema),
        risky: z.number().int().describe('changes that can cut the management connection'),
        notes: z.array(z.string()),
        applyPolicy: z
          .enum(['allow', 'ask', 'deny'])
          .describe('what the policy says about applying this plan'),
        anomalies: z
          .array(
            z.object({
              key: z.string(),
              changeId: z.string(),
              score: z.number().describe('in [0, 1]; higher is more unusual for this host'),
              anomalous: z.boolean().describe('at or above the model threshold'),
              reasons: z.array(z.string()),
            }),
          )
          .optional()
          .describe('each change scored by the anomaly model (when opdbus-mcp runs with --anomaly-model)'),
      },
      annotations: { title: 'Plan a state document', ...readOnly },
    },
    serve(
      'plan',
      (args: { document: string }, { engine }) =>
        Promise.resolve({
          subjects: Object.keys(mcp.parseDocument(engine, args.document).plugins).map((plugin) => ({
            plugin,
          })),
        }),
      async (args: { document: string }, { engine }) => {
        const doc = mcp.parseDocument(engine, args.document);
        const { plan, notes } = await engine.plan(doc);
        const risky = plan.changes.filter((c) => c.risk !== undefined).length;
        const applyPolicy =
          session.scope === 'read' ? 'deny' : mcp.policy.decide('apply', subjectsOf(plan.changes)).action;
        const scorer = await mcp.changeScorer();
        const anomalies = scorer
          ?.score(plan.changes, (name) => engine.registry.get(name), { actor: engine.actor.name })
          .map(({ key, changeId, score, anomalous, reasons }) => ({
            key,
            changeId,
            score,
            anomalous,
            reasons,
          }));
        const unusual = (anomalies ?? []).filter((a) => a.anomalous);
        return {
          structured: {
            planHash: plan.hash,
            changes: plan.changes.map(changeView),
            risky,
            notes: notes.map((n) => `${n.plugin} ${n.resource}: ${n.note}`),
            applyPolicy,
            ...(anomalies === undefined ? {} : { anomalies }),
          },
          text:
            plan.changes.length === 0
              ? 'No changes: the host already matches the document.'
              : `${formatPlanPreview(plan, engine)}\n\nAn apply of this plan: ${applyPolicy}${risky > 0 ? `; ${risky} risky change(s), applied commit-confirmed` : ''}.${
                  unusual.length === 0
                    ? ''
                    : `\n\nUnusual for this host (anomaly model, threshold ${scorer!.threshold}):\n${unusual
                        .map(
                          (a) =>
                            `- ${a.key}: score ${a.score.toFixed(3)}; ${a.reasons.join('; ') || 'unusual'}`,
                        )
                        .join('\n')}`
                }`,
          summary: { planHash: plan.hash, changes: plan.changes.length },
        };
      },
    ),
  );

  const defaultTimeout = mcp.options.confirmTimeoutS ?? 120;
  server.registerTool(
    'apply',
    {
      title: 'Apply a state document',
      description: `Apply a state document as one transaction: checkpoint, apply in dependency order, verify, roll back on failure. Commit-confirmed by default: the transaction stays pending and is rolled back after \`confirmTimeoutS\` (default ${defaultTimeout}) seconds unless \`confirm\` is called, so check the host first. Risky changes (that can cut the management connection) are always commit-confirmed. The policy may ask a human to approve the plan first.`,
      inputSchema: {
        document: z
          .string()
          .max(4 * 1024 * 1024)
          .describe('the state document, YAML or JSON'),
        confirmTimeoutS: z
          .number()
          .int()
          .min(10)
          .max(3600)
          .optional()
          .describe(
            `seconds until the pending transaction is rolled back unless confirmed (default ${defaultTimeout})`,
          ),
        commitConfirmed: z
          .boolean()
          .optional()
          .describe('false: commit at once when verified (refused when a change is risky); default true'),
        planHash: z
          .string()
          .optional()
          .describe('the planHash `plan` returned: refuse if the plan is no longer the same'),
      },
      outputSchema: {
        status: z.enum(['no-changes', 'committed', 'pending-confirm']),
        txId: z.string().optional(),
        deadline: z.string().optional().describe('pending-confirm: call confirm before this time'),
        planHash: z.string(),
        changes: z.number().int(),
      },
      annotations: {
        title: 'Apply a state document',
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    serve(
      'apply',
      async (
        args: {
          document: string;
          confirmTimeoutS?: number | undefined;
          commitConfirmed?: boolean | undefined;
          planHash?: string | undefined;
        },
        { engine },
      ) => {
        const doc = mcp.parseDocument(engine, args.document);
        const { plan } = await engine.plan(doc);
        if (args.planHash !== undefined && args.planHash !== plan.hash) {
          throw new OpdbusError(
            'OPDBUS_ERR_TX_STATE',
            `The plan changed since it was computed (it was ${args.planHash.slice(0, 12)}, it is now ${plan.hash.slice(0, 12)}): the host changed meanwhile. Call plan again and review it.`,
            { data: { expected: args.planHash, actual: plan.hash } },
          );
        }
        const confirmed = args.commitConfirmed !== false;
        const timeout = args.confirmTimeoutS ?? defaultTimeout;
        return {
          subjects: subjectsOf(plan.changes),
          preview: formatPlanPreview(plan, engine, [
            confirmed
              ? `Commit-confirmed: rolled back after ${timeout} s unless confirmed.`
              : 'Committed at once when verified (no confirmation window).',
          ]),
        };
      },
      async (
        args: {
          document: string;
          confirmTimeoutS?: number | undefined;
          commitConfirmed?: boolean | undefined;
        },
        { engine, extra, log },
      ) => {
        const doc = mcp.parseDocument(engine, args.document);
        const confirmed = args.commitConfirmed !== false;
        const progressToken = extra._meta?.progressToken;
        let total = 0;
        let done = 0;
        const pending: Promise<void>[] = [];
        const stop = engine.events.on((event) => {
          if (event.type === 'plan.created') total = event.changes;
          if (event.type === 'change.applied' || event.type === 'change.failed') done += 1;
          const message =
            event.type === 'change.applied'
              ? `${event.plugin} ${event.op} ${event.resource}: ok`
              : event.type === 'change.failed'
                ? `${event.plugin} ${event.resource}: failed: ${event.error.split('\n')[0] ?? ''}`
                : event.type === 'verify.ok'
                  ? 'verified: the host matches the document'
                  : event.type === 'restore.begin'
                    ? `rolling back: ${event.reason}`
                    : event.type === 'restore.done'
                      ? event.ok
                        ? 'rollback verified'
                        : `rollback did not verify: ${event.residual.join('; ')}`
                      : undefined;
          if (message === undefined) return;
          pending.push(log(event.type === 'change.failed' ? 'warning' : 'info', message));
          if (progressToken !== undefined && total > 0)
            pending.push(
              extra
                .sendNotification({
                  method: 'notifications/progress',
                  params: { progressToken, progress: done, total, message },
                })
                .catch((err: unknown) => mcp.logger.debug({ err }, 'could not send progress')),
            );
        });
        try {
          const result = await engine.apply(doc, {
            signal: extra.signal,
            ...(confirmed ? { confirmTimeoutS: args.confirmTimeoutS ?? defaultTimeout } : {}),
          });
          const structured = {
            status: result.status,
            ...(result.txId === undefined ? {} : { txId: result.txId }),
            ...(result.deadline === undefined ? {} : { deadline: result.deadline }),
            planHash: result.plan.hash,
            changes: result.plan.changes.length,
          };
          return {
            structured,
            text:
              result.status === 'no-changes'
                ? 'No changes: the host already matches the document.'
                : result.status === 'pending-confirm'
                  ? `Applied and verified. Transaction ${result.txId} is PENDING: check the host, then call confirm with txId ${result.txId} before ${result.deadline}, or it is rolled back (call rollback to undo it now).`
                  : `Committed transaction ${result.txId} (${result.plan.changes.length} change(s)).`,
            summary: structured,
          };
        } finally {
          stop();
          await Promise.all(pending);
        }
      },
    ),
  );

  const txArg = {
    txId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,100}$/)
      .optional()
      .describe('transaction id (default: the latest one that fits)'),
  };
  const txSubjects = async (
    engine: Engine,
    txId: string | undefined,
    accept: (r: TransactionRecord) => boolean,
  ) => {
    const all = await engine.transactions();
    const record = txId === undefined ? all.filter(accept).at(-1) : all.find((r) => r.txId === txId);
    if (record === undefined) return { subjects: [] };
    return {
      subjects: subjectsOf(record.plan.changes),
      preview: formatPlanPreview(record.plan, engine, [`Transaction ${record.txId} (${record.status}).`]),
    };
  };

  server.registerTool(
    'confirm',
    {
      title: 'Confirm a pending transaction',
      description:
        'Confirm a commit-confirmed transaction, so that it is kept (default: the latest pending one). Call it after checking that the host works.',
      inputSchema: txArg,
      outputSchema: { transaction: txSchema },
      annotations: {
        title: 'Confirm a pending transaction',
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    serve(
      'confirm',
      (args: { txId?: string | undefined }, { engine }) =>
        txSubjects(engine, args.txId, (r) => r.status === 'pending-confirm'),
      async (args: { txId?: string | undefined }, { engine }) => {
        const record = await engine.confirm(args.txId);
        return {
          structured: { transaction: txView(record) },
          text: `Confirmed transaction ${record.txId}: it is committed.`,
          summary: { txId: record.txId, status: record.status },
        };
      },
    ),
  );

  server.registerTool(
    'rollback',
    {
      title: 'Roll back a transaction',
      description:
        "Restore a transaction's checkpoint and verify the restore (default: the latest committed or pending one). Refused when a later transaction changed the same resources.",
      inputSchema: txArg,
      outputSchema: { transaction: txSchema },
      annotations: {
        title: 'Roll back a transaction',
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    serve(
      'rollback',
      (args: { txId?: string | undefined }, { engine }) =>
        txSubjects(engine, args.txId, (r) => r.status === 'pending-confirm' || r.status === 'committed'),
      async (args: { txId?: string | undefined }, { engine, session: s }) => {
        const record = await engine.rollback(args.txId, {
          reason: `rollback requested by ${engine.actor.name} over MCP (${s.transport})`,
        });
        return {
          structured: { transaction: txView(record) },
          text: `Rolled back transaction ${record.txId}; the restore verified.`,
          summary: { txId: record.txId, status: record.status },
        };
      },
    ),
  );

  server.registerTool(
    'transactions',
    {
      title: 'List transactions',
      description:
        'The transactions in the state directory, newest last: status, who, how many changes, deadlines of pending ones.',
      inputSchema: {
        limit: z.number().int().min(1).max(500).optional().describe('the newest N (default 50)'),
      },
      outputSchema: { transactions: z.array(txSchema) },
      annotations: { title: 'List transactions', ...readOnly },
    },
    serve('transactions', ungoverned, async (args: { limit?: number | undefined }, { engine }) => {
      const all = await engine.transactions();
      return { structured: { transactions: all.slice(-(args.limit ?? 50)).map(txView) } };
    }),
  );

  const paths = ledgerPaths(mcp.options.stateDir);
  const withLedger = async <T>(fn: (ledger: Ledger) => Promise<T>): Promise<T> => {
    if (!existsSync(join(paths.ledgerDir, 'log')))
      throw new OpdbusError(
        'OPDBUS_ERR_LEDGER_NOT_FOUND',
        `There is no ledger in ${paths.ledgerDir} yet; it is created by the first recorded step.`,
        { data: { dir: paths.ledgerDir } },
      );
    const ledger = await Ledger.open({ dir: paths.ledgerDir, readOnly: true });
    try {
      return await fn(ledger);
    } finally {
      await ledger.close();
    }
  };

  server.registerTool(
    'ledger_entries',
    {
      title: 'Read ledger entries',
      description:
        "Entries of the host's tamper-evident ledger (plans, applies, rollbacks, confirms, snapshots, MCP tool calls), with their leaf hashes. Default: the newest 20.",
      inputSchema: {
        from: z.number().int().min(0).optional().describe('first index (default: the newest `limit`)'),
        limit: z.number().int().min(1).max(100).optional().describe('how many (default 20)'),
      },
      outputSchema: {
        size: z.number().int(),
        entries: z.array(z.object({ index: z.number().int(), leafHash: z.string(), entry: z.unknown() })),
      },
      annotations: { title: 'Read ledger entries', ...readOnly },
    },
    serve('ledger_entries', ungoverned, (args: { from?: number | undefined; limit?: number | undefined }) =>
      withLedger(async (ledger) => {
        const limit = args.limit ?? 20;
        const from = args.from ?? Math.max(0, ledger.size - limit);
        const entries: { index: number; leafHash: string; entry: unknown }[] = [];
        for await (const e of ledger.entries(
          Math.min(from, ledger.size),
          Math.min(ledger.size, from + limit),
        ))
          entries.push({ index: e.index, leafHash: e.leafHash.toString('hex'), entry: e.value });
        return { structured: { size: ledger.size, entries } };
      }),
    ),
  );

  server.registerTool(
    'ledger_verify',
    {
      title: 'Verify the ledger',
      description:
        'Verify the whole ledger: every entry against the Merkle tree and every signed checkpoint. Reports the first entry that cannot be trusted if it was tampered with.',
      inputSchema: {},
      outputSchema: {
        ok: z.boolean(),
        size: z.number().int(),
        checkpoints: z.number().int(),
        root: z.string(),
        tampering: z.object({ index: z.number().nullable(), message: z.string() }).optional(),
      },
      annotations: { title: 'Verify the ledger', ...readOnly },
    },
    serve('ledger_verify', ungoverned, async () => {
      if (!existsSync(join(paths.ledgerDir, 'log')))
        throw new OpdbusError(
          'OPDBUS_ERR_LEDGER_NOT_FOUND',
          `There is no ledger in ${paths.ledgerDir} yet.`,
          {
            data: { dir: paths.ledgerDir },
          },
        );
      const report = await verifyLedger(paths.ledgerDir);
      const structured = {
        ok: report.ok,
        size: report.size,
        checkpoints: report.checkpoints,
        root: report.root,
        ...(report.tampering === undefined
          ? {}
          : { tampering: { index: report.tampering.index, message: report.tampering.message } }),
      };
      return { structured, summary: { ok: report.ok, size: report.size } };
    }),
  );

  server.registerTool(
    'ledger_proof',
    {
      title: 'Inclusion proof of a ledger entry',
      description:
        'The RFC 9162 inclusion proof of one ledger entry in the tree of `size` entries (default: the whole ledger), verified here, with the signed checkpoint it leads to.',
      inputSchema: {
        index: z.number().int().min(0),
        size: z.number().int().min(1).optional(),
      },
      outputSchema: {
        index: z.number().int(),
        size: z.number().int(),
        leafHash: z.string(),
        proof: z.array(z.string()),
        root: z.string(),
        checkpoint: z.string().optional(),
      },
      annotations: { title: 'Inclusion proof of a ledger entry', ...readOnly },
    },
    serve('ledger_proof', ungoverned, (args: { index: number; size?: number | undefined }) =>
      withLedger(async (ledger) => {
        const size = args.size ?? ledger.size;
        if (size > ledger.size || args.index >= size)
          throw new OpdbusError(
            'OPDBUS_ERR_LEDGER_NOT_FOUND',
            `Entry ${args.index} is not in a tree of size ${size} (the ledger has ${ledger.size} entries).`,
            { data: { index: args.index, size } },
          );
        const leaf = ledger.leafHash(args.index);
        const path = ledger.inclusionProof(args.index, size);
        const root = ledger.root(size);
        if (!verifyInclusion(leaf, args.index, size, path, root))
          throw new OpdbusError(
            'OPDBUS_ERR_LEDGER_TAMPERED',
            `The proof computed for entry ${args.index} does not verify: the ledger's stored hashes are inconsistent. Run ledger_verify.`,
          );
        const checkpoint = size === ledger.size ? await ledger.checkpoint() : undefined;
        return {
          structured: {
            index: args.index,
            size,
            leafHash: leaf.toString('hex'),
            proof: path.map((h) => h.toString('hex')),
            root: root.toString('hex'),
            ...(checkpoint === undefined ? {} : { checkpoint }),
          },
        };
      }),
    ),
  );

  server.registerTool(
    'snapshots_list',
    {
      title: 'List state snapshots',
      description:
        'The encrypted snapshots of the observed state (taken at every committed apply), with what triggered each and whether it still matches its ledger entry.',
      inputSchema: {},
      outputSchema: {
        backend: z.string(),
        snapshots: z.array(
          z.object({
            id: z.string(),
            status: z.string(),
            createdAt: z.string().optional(),
            trigger: z.unknown().optional(),
            plugins: z.array(z.string()).optional(),
            problem: z.string().optional(),
          }),
        ),
      },
      annotations: { title: 'List state snapshots', ...readOnly },
    },
    serve('snapshots_list', ungoverned, async () => {
      if (!existsSync(join(paths.ledgerDir, 'log')))
        return { structured: { backend: 'none', snapshots: [] } };
      return withLedger(async (ledger) => {
        const snaps = await SnapshotManager.open({
          dir: paths.snapshotsDir,
          keyFile: paths.snapshotKey,
          ledger,
        });
        const all = await snaps.list();
        return {
          structured: {
            backend: snaps.backend.kind,
            snapshots: all.map((s) => ({
              id: s.id,
              status: s.status,
              ...(s.createdAt === undefined ? {} : { createdAt: s.createdAt }),
              ...(s.trigger === undefined ? {} : { trigger: s.trigger }),
              ...(s.plugins === undefined ? {} : { plugins: s.plugins }),
              ...(s.problem === undefined ? {} : { problem: s.problem }),
            })),
          },
        };
      });
    }),
  );

  server.registerTool(
    'numa_topology',
    {
      title: 'NUMA topology',
      description:
        "The machine's NUMA topology from sysfs: nodes with their CPUs, memory and distances, caches, and which CPUs are online, offline or isolated.",
      inputSchema: {},
      outputSchema: { topology: z.record(z.string(), z.unknown()) },
      annotations: { title: 'NUMA topology', ...readOnly },
    },
    serve('numa_topology', ungoverned, async () => {
      const topology = await readTopology({ root: mcp.options.numaRoot ?? '/', wholeSystem: true });
      return { structured: { topology: JSON.parse(JSON.stringify(topology)) as Record<string, unknown> } };
    }),
  );

  server.registerTool(
    'snapshots_restore',
    {
      title: 'Plan restoring a state snapshot',
      description:
        'The plan that would take the host back to a state snapshot (see snapshots_list): its changes with risks, and what the policy says about applying it. Changes nothing; to restore, an operator runs `opdbus snapshot restore ID` (the snapshot may hold secrets, so its document is not handed out here).',
      inputSchema: { id: z.string().min(1).max(128).describe('the snapshot id, from snapshots_list') },
      outputSchema: {
        snapshot: z.string(),
        planHash: z.string(),
        changes: z.array(changeSchema),
        risky: z.number().int(),
        notes: z.array(z.string()),
        applyPolicy: z.enum(['allow', 'ask', 'deny']),
      },
      annotations: { title: 'Plan restoring a state snapshot', ...readOnly },
    },
    serve('snapshots_restore', ungoverned, async (args: { id: string }, { engine }) => {
      if (!existsSync(join(paths.ledgerDir, 'log')))
        throw new OpdbusError('OPDBUS_ERR_LEDGER_NOT_FOUND', 'There are no snapshots: the ledger is empty.');
      const state = await withLedger(async (ledger) => {
        const snaps = await SnapshotManager.open({
          dir: paths.snapshotsDir,
          keyFile: paths.snapshotKey,
          ledger,
        });
        return (await snaps.load(args.id)).state;
      });
      const doc = parseStateDocument(JSON.stringify({ version: 1, plugins: state }), {
        source: `snapshot ${args.id}`,
        registry: engine.registry,
      });
      const { plan, notes } = await engine.plan(doc);
      const risky = plan.changes.filter((c) => c.risk !== undefined).length;
      const applyPolicy =
        session.scope === 'read' ? 'deny' : mcp.policy.decide('apply', subjectsOf(plan.changes)).action;
      return {
        structured: {
          snapshot: args.id,
          planHash: plan.hash,
          changes: plan.changes.map(changeView),
          risky,
          notes: notes.map((n) => `${n.plugin} ${n.resource}: ${n.note}`),
          applyPolicy,
        },
        text:
          plan.changes.length === 0
            ? `The host already matches snapshot ${args.id}.`
            : `Restoring snapshot ${args.id}:\n${formatPlanPreview(plan, engine)}\n\nAn apply of this plan: ${applyPolicy}.`,
        summary: { snapshot: args.id, planHash: plan.hash, changes: plan.changes.length },
      };
    }),
  );

  server.registerTool(
    'numa_placement',
    {
      title: 'NUMA placement',
      description:
        'Resolve NUMA placement requests (a `numa` section: `placements:` per systemd unit — cpus, nodes, near a PCI device, exclusive …) against the topology: the CPUAffinity / NUMAPolicy / NUMAMask each unit would get, and why. Changes nothing.',
      inputSchema: {
        section: z
          .string()
          .max(256 * 1024)
          .describe('the numa section (YAML or JSON), or a whole state document with plugins.numa'),
      },
      outputSchema: {
        placements: z.array(z.record(z.string(), z.unknown())),
        order: z.array(z.string()),
      },
      annotations: { title: 'NUMA placement', ...readOnly },
    },
    serve('numa_placement', ungoverned, async (args: { section: string }) => {
      let value: unknown;
      try {
        value = parseYaml(args.section);
      } catch (err) {
        throw new OpdbusError(
          'OPDBUS_ERR_STATE_PARSE',
          `section is not valid YAML or JSON: ${(err as Error).message}`,
        );
      }
      const isDocument = typeof value === 'object' && value !== null && 'plugins' in value;
      const section: unknown = isDocument ? (value as { plugins?: { numa?: unknown } }).plugins?.numa : value;
      const parsed = numaSectionSchema.safeParse(section);
      if (!parsed.success) {
        const prefix = isDocument ? 'plugins.numa' : '';
        throw new OpdbusError(
          'OPDBUS_ERR_STATE_INVALID',
          `section has no valid numa section: ${parsed.error.issues
            .map((i) => `${[prefix, ...i.path.map(String)].filter((x) => x !== '').join('.')}: ${i.message}`)
            .join('; ')}`,
        );
      }
      const topology = await readTopology({ root: mcp.options.numaRoot ?? '/', wholeSystem: true });
      const result = resolvePlacements(parsed.data, topology, {
        path: isDocument ? 'plugins.numa.placements' : 'placements',
      });
      return {
        structured: JSON.parse(JSON.stringify(result)) as {
          placements: Record<string, unknown>[];
          order: string[];
        },
        summary: { units: result.order },
      };
    }),
  );

  const anomalyModel = mcp.options.anomalyModel;
  if (anomalyModel !== undefined) {
    server.registerTool(
      'anomalies',
      {
        title: 'Unusual recent changes',
        description:
          "Score the host's recent changes (from the ledger's per-change records) against the anomaly model the operator trained (@opdbus/ml): each with a score in [0, 1], whether it is unusual, the reasons (a new actor, an unusual hour, a value never seen …) and the nearest usual changes.",
        inputSchema: {
          last: z
            .number()
            .int()
            .min(1)
            .max(10_000)
            .optional()
            .describe('how many recent ledger entries to read (default 500)'),
          all: z.boolean().optional().describe('list every change, not only the unusual ones'),
        },
        outputSchema: {
          threshold: z.number(),
          scored: z.number().int(),
          changes: z.array(z.record(z.string(), z.unknown())),
        },
        annotations: { title: 'Unusual recent changes', ...readOnly },
      },
      serve(
        'anomalies',
        ungoverned,
        async (args: { last?: number | undefined; all?: boolean | undefined }) => {
          const ml = await loadMl();
          const model = await ml.loadModel(anomalyModel);
          const events = existsSync(join(paths.ledgerDir, 'log'))
            ? await withLedger(async (ledger) => {
                const out = [];
                for await (const e of readChangeEvents(ledger, {
                  from: Math.max(0, ledger.size - (args.last ?? 500)),
                }))
                  out.push(e);
                return out;
              })
            : [];
          const scores = events.length === 0 ? [] : model.score(events);
          const changes = scores
            .map((r, i) => ({ r, e: events[i]! }))
            .filter(({ r }) => args.all === true || r.anomalous)
            .map(({ r, e }) => ({
              at: e.at,
              actor: e.actor,
              plugin: e.plugin,
              resource: e.resource,
              op: e.op,
              score: r.score,
              anomalous: r.anomalous,
              reasons: r.reasons,
              neighbours: JSON.parse(JSON.stringify(r.neighbours)) as unknown,
            }));
          return {
            structured: { threshold: model.threshold, scored: scores.length, changes },
            summary: { scored: scores.length, unusual: scores.filter((r) => r.anomalous).length },
          };
        },
      ),
    );
  }

  const daemonSocket = mcp.options.daemonSocket;
  if (daemonSocket !== undefined) {
    server.registerTool(
      'drift',
      {
        title: 'Drift reported by opdbusd',
        description:
          "What the running op-dbus daemon reports now: resources that drifted from the desired state (and whether they are being corrected), resources on hold for flapping, and manual transactions that are the baseline of resources. Read from the daemon's API (GET /v1/drift on its unix socket).",
        inputSchema: {},
        outputSchema: {
          drift: z.array(z.record(z.string(), z.unknown())),
          holds: z.array(z.record(z.string(), z.unknown())),
          baselines: z.array(z.record(z.string(), z.unknown())),
        },
        annotations: { title: 'Drift reported by opdbusd', ...readOnly },
      },
      serve('drift', ungoverned, async () => {
        const report = (await daemonGet(daemonSocket, '/v1/drift')) as {
          drift: Record<string, unknown>[];
          holds: Record<string, unknown>[];
          baselines: Record<string, unknown>[];
        };
        return {
          structured: report,
          summary: { drift: report.drift.length, holds: report.holds.length },
        };
      }),
    );
  }
}

/** What the anomalies tool uses of @opdbus/ml, an optional package (loaded only when the tool runs). */
interface MlModule {
  loadModel(dir: string): Promise<{
    threshold: number;
    score(
      events: readonly object[],
    ): { score: number; anomalous: boolean; reasons: string[]; neighbours: unknown[] }[];
  }>;
}

async function loadMl(): Promise<MlModule> {
  const name = '@opdbus/ml';
  try {
    return (await import(name)) as MlModule;
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_PLUGIN_UNAVAILABLE',
      `The anomalies tool needs @opdbus/ml, which is not installed (${(err as Error).message.split('\n')[0]}); install it beside opdbus-mcp (npm install @opdbus/ml).`,
      { cause: err },
    );
  }
}

/** GET a JSON document from opdbusd's API over its unix socket (the socket's mode is its access control). */
function daemonGet(socketPath: string, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, path, timeout: 10_000, headers: { accept: 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > 16 * 1024 * 1024) req.destroy(new Error('the answer is larger than 16 MiB'));
          else chunks.push(chunk);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) {
            reject(
              new OpdbusError(
                'OPDBUS_ERR_PLUGIN_UNAVAILABLE',
                `opdbusd at ${socketPath} answered ${res.statusCode ?? '?'} to GET ${path}: ${text.slice(0, 300)}`,
              ),
            );
            return;
          }
          try {
            resolve(JSON.parse(text));
          } catch (err) {
            reject(
              new OpdbusError(
                'OPDBUS_ERR_PLUGIN_UNAVAILABLE',
                `opdbusd at ${socketPath} answered GET ${path} with something that is not JSON: ${(err as Error).message}`,
                { cause: err },
              ),
            );
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (err) =>
      reject(
        new OpdbusError(
          'OPDBUS_ERR_PLUGIN_UNAVAILABLE',
          `Cannot reach opdbusd at ${socketPath} (${err.message}); is it running (systemctl status opdbusd)?`,
          { cause: err },
        ),
      ),
    );
    req.end();
  });
}
