import {
  OpdbusError,
  definePlugin,
  isOpdbusError,
  makeChange,
  packageVersion,
  type Plugin,
  type PluginContext,
  type WatchEvent,
} from '@opdbus/core';
import { Rtnetlink, canonicalIp, tryParseIp } from '@opdbus/netlink';
import {
  NftClient,
  NftMonitor,
  nftConstants,
  readRuleset,
  resolverFromLinks,
  type ChainSpec,
  type InterfaceResolver,
  type NftFamily,
  type NftTableRef,
  type ReadableRuleset,
  type SetSpec,
  type TableSpec,
} from '@opdbus/nftables';
import { planBatch } from './apply.js';
import { diffSection, type FirewallFacts } from './diff.js';
import {
  chainResource,
  fullSection,
  parseResource,
  scopedSection,
  setResource,
  tableResource,
  type FirewallChange,
  type FirewallValue,
} from './model.js';
import type { ManagementConnection } from './risk.js';
import type { ChainEntry, FirewallSection, SetEntry, TableEntry } from './schema.js';
import { firewallSchema } from './sectionSchema.js';

/**
 * The checkpoint: each table a plan touches, whole (every chain with its rules, every set with
 * its elements), or null when it did not exist.
 */
export interface FirewallCheckpoint {
  tables: { family: string; name: string; table: TableSpec | null }[];
}

/** A management connection to protect, besides the one in SSH_CONNECTION. */
export interface DeclaredConnection {
  /** The remote end's address. */
  client: string;
  clientPort?: number;
  /** The local address it arrives at. */
  server: string;
  /** The local port (22 for SSH). */
  serverPort?: number;
}

/** Options of {@link createFirewallPlugin}. */
export interface FirewallPluginOptions {
  /**
   * Connections a change must not cut, besides SSH_CONNECTION (which counts only when its local
   * address is in the target namespace). A change after which the firewall might drop one of
   * them is flagged risky: it needs commit-confirmed (`--confirm-timeout`) or `--force`.
   */
  managementConnections?: readonly DeclaredConnection[];
  /** `watch` leaves out transactions this process committed (default true). */
  ignoreOwnChanges?: boolean;
  /** Read SSH_CONNECTION from here (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /**
   * Called with each batch after it is computed from the ruleset read at `generation` and before
   * it is committed (for tracing; tests use it to let another writer in between).
   */
  beforeCommit?: (info: {
    generation: number;
    messages: number;
    changes: readonly FirewallChange[];
  }) => void | Promise<void>;
}

/** The firewall plugin, with a way to close its sockets. */
export type FirewallPlugin = Plugin<FirewallSection, FirewallCheckpoint, FirewallValue, FirewallFacts> & {
  /** Close the nftables sockets the plugin keeps open (tests, a daemon shutting down). */
  close(): void;
};

const { NFT_SET_F } = nftConstants;

/** The tables the section (or changes) name. */
function tablesOf(section: FirewallSection): NftTableRef[] {
  return (section.tables ?? []).map((t) => ({ family: t.family, name: t.name }));
}

function tablesOfChanges(changes: readonly FirewallChange[]): NftTableRef[] {
  const seen = new Map<string, NftTableRef>();
  for (const c of changes) {
    const ref = parseResource(c.resource);
    seen.set(`${ref.family} ${ref.table}`, { family: ref.family, name: ref.table });
  }
  return [...seen.values()];
}

/** Parse SSH_CONNECTION ("client cport server sport"). */
function sshConnection(env: NodeJS.ProcessEnv): DeclaredConnection | undefined {
  const parts = env.SSH_CONNECTION?.trim().split(/\s+/);
  if (parts === undefined || parts.length !== 4) return undefined;
  const [client, cport, server, sport] = parts as [string, string, string, string];
  if (tryParseIp(client) === undefined || tryParseIp(server) === undefined) return undefined;
  return {
    client: canonicalIp(client),
    clientPort: Number(cport),
    server: canonicalIp(server),
    serverPort: Number(sport),
  };
}

/** Does any rule of these changes match on iif/oif (then interface indexes are needed)? */
function usesInterfaces(changes: readonly FirewallChange[]): boolean {
  return changes.some((c) => {
    const after = c.after as { rules?: { match?: { iif?: unknown; oif?: unknown } }[] } | null;
    return after?.rules?.some((r) => r.match?.iif !== undefined || r.match?.oif !== undefined) === true;
  });
}

/** The section that puts the checkpointed tables back exactly. */
export function restoreSection(token: FirewallCheckpoint, current: readonly TableSpec[]): FirewallSection {
  const tables: TableEntry[] = token.tables.map(({ family, name, table }) => {
    const saved = table;
    if (saved === null) return { family: family as NftFamily, name, state: 'absent' };
    const now = current.find((t) => t.family === family && t.name === name);
    const chains: ChainEntry[] = (saved.chains ?? []).map((c: ChainSpec) => ({ ...c, rules: c.rules ?? [] }));
    for (const c of now?.chains ?? [])
      if (!chains.some((x) => x.name === c.name)) chains.push({ name: c.name, state: 'absent' });
    const sets: SetEntry[] = (saved.sets ?? []).map((s: SetSpec) => ({ ...s, elements: s.elements ?? [] }));
    for (const s of now?.sets ?? [])
      if (!sets.some((x) => x.name === s.name)) sets.push({ name: s.name, state: 'absent' });
    const entry: TableEntry = {
      family: saved.family,
      name: saved.name,
      dormant: saved.dormant === true,
      chains,
      sets,
    };
    if (saved.comment !== undefined) entry.comment = saved.comment;
    return entry;
  });
  return { tables };
}

/**
 * Create the firewall plugin: nftables tables, chains (with rules in readable form) and sets
 * (with elements), over native nfnetlink (@opdbus/nftables) — never through `nft`.
 *
 * A plan's changes are applied as ONE nftables batch, which the kernel commits atomically or not
 * at all, guarded by the ruleset generation it was computed from: a concurrent writer makes it
 * fail cleanly with `OPDBUS_ERR_FIREWALL_CONFLICT`. Checkpoints hold the whole tables a plan
 * touches. `watch` follows the nftables multicast group. A change after which the firewall could
 * drop the management connection (SSH_CONNECTION, or one declared) is flagged risky.
 */
export function createFirewallPlugin(options: FirewallPluginOptions = {}): FirewallPlugin {
  const env = options.env ?? process.env;
  const clients = new Map<
    object,
    {
      nft: NftClient;
      users: number;
      timer: NodeJS.Timeout | undefined;
      last?: { key: string; rs: ReadableRuleset };
    }
  >();
  const hostKey = {};

  /** One client per namespace, closed after a second unused (an unref'd timer). */
  async function withClient<T>(ctx: PluginContext, fn: (nft: NftClient) => Promise<T>): Promise<T> {
    const key = ctx.netns ?? hostKey;
    let entry = clients.get(key);
    if (entry === undefined) {
      entry = { nft: NftClient.open({ netns: ctx.netns, logger: ctx.logger }), users: 0, timer: undefined };
      clients.set(key, entry);
    }
    const held = entry;
    clearTimeout(held.timer);
    held.users++;
    try {
      return await fn(held.nft);
    } finally {
      held.users--;
      if (held.users === 0) {
        held.timer = setTimeout(() => {
          if (held.users > 0) return;
          if (clients.get(key) === held) clients.delete(key);
          held.nft.close();
        }, 1000).unref();
      }
    }
  }

  /**
   * Read tables, reusing the last read of the same tables when the ruleset generation has not
   * moved since (one GETGEN instead of a dump: a transaction reads the same ruleset to plan, to
   * checkpoint and to apply). Tables with timeout or dynamic sets are always read again: the
   * packet path adds and expires their elements without a new generation.
   */
  async function read(ctx: PluginContext, tables?: readonly NftTableRef[]): Promise<ReadableRuleset> {
    const key =
      tables === undefined
        ? '*'
        : tables
            .map((t) => `${t.family} ${t.name}`)
            .sort()
            .join(',');
    return withClient(ctx, async (nft) => {
      const entry = clients.get(ctx.netns ?? hostKey);
      const last = entry?.last;
      if (last !== undefined && last.key === key && (await nft.generation()).id === last.rs.generation)
        return last.rs;
      const rs = await readRuleset(nft, tables === undefined ? {} : { tables });
      const volatile = rs.raw.sets.some((s) => (s.flags & (NFT_SET_F.TIMEOUT | NFT_SET_F.EVAL)) !== 0);
      if (entry !== undefined) {
        if (volatile) delete entry.last;
        else entry.last = { key, rs };
      }
      return rs;
    });
  }

  async function links(ctx: PluginContext): Promise<{ name: string; index: number; addresses: string[] }[]> {
    const nl = Rtnetlink.open({ netns: ctx.netns, logger: ctx.logger });
    try {
      const [ls, addrs] = await Promise.all([nl.listLinks(), nl.listAddresses()]);
      return ls.map((l) => ({
        name: l.name,
        index: l.index,
        addresses: addrs.filter((a) => a.index === l.index).map((a) => canonicalIp(a.address.split('/')[0]!)),
      }));
    } finally {
      nl.close();
    }
  }

  /** The management connections that end in the target namespace. */
  async function managementConnections(ctx: PluginContext): Promise<ManagementConnection[]> {
    const declared = (options.managementConnections ?? []).map((c) => ({ ...c, source: 'declared' }));
    const ssh = sshConnection(env);
    const candidates = ssh === undefined ? declared : [...declared, { ...ssh, source: 'SSH_CONNECTION' }];
    if (candidates.length === 0) return [];
    const local = await links(ctx);
    const out: ManagementConnection[] = [];
    for (const c of candidates) {
      const server = canonicalIp(c.server);
      const link = local.find((l) => l.addresses.includes(server));
      if (link === undefined && c.source === 'SSH_CONNECTION') continue; // another namespace's connection
      const m: ManagementConnection = { client: canonicalIp(c.client), server, source: c.source };
      if (c.clientPort !== undefined) m.clientPort = c.clientPort;
      if (c.serverPort !== undefined) m.serverPort = c.serverPort;
      if (link !== undefined) m.interface = link.name;
      out.push(m);
    }
    return out;
  }

  async function applyBatch(changes: readonly FirewallChange[], ctx: PluginContext): Promise<void> {
    if (changes.length === 0) return;
    await withClient(ctx, async (nft) => {
      const rs = await read(ctx, tablesOfChanges(changes));
      let interfaces: InterfaceResolver | undefined;
      if (usesInterfaces(changes)) interfaces = resolverFromLinks(await links(ctx));
      const planned = planBatch(changes, rs, interfaces);
      if (planned.batch.length === 0) return;
      await options.beforeCommit?.({
        generation: rs.generation,
        messages: planned.batch.length,
        changes: planned.effective,
      });
      try {
        const result = await nft.commit(planned.batch, { generation: rs.generation });
        ctx.logger.debug(
          { changes: planned.effective.map((c) => c.id), messages: result.messages, bytes: result.bytes },
          'nftables batch committed',
        );
      } catch (err) {
        if (isOpdbusError(err, 'OPDBUS_ERR_NFT_GENERATION'))
          throw new OpdbusError(
            'OPDBUS_ERR_FIREWALL_CONFLICT',
            `Another writer changed the nftables ruleset while op-dbus was applying (the generation moved from ${rs.generation}); the batch was refused and nothing was changed. Run \`opdbus diff\` and apply again.`,
            { data: { generation: rs.generation, changeId: planned.effective[0]!.id }, cause: err },
          );
        if (isOpdbusError(err, 'OPDBUS_ERR_NFT_REQUEST')) {
          const index = typeof err.data?.index === 'number' ? err.data.index : -1;
          const owner = planned.owners[index];
          throw new OpdbusError(
            'OPDBUS_ERR_FIREWALL_APPLY',
            `The kernel refused the nftables batch${owner === undefined ? '' : ` at "${owner.summary}"`}: ${err.message}`,
            {
              data: {
                ...(owner === undefined ? {} : { changeId: owner.id, resource: owner.resource }),
                errno: err.data?.errno,
                request: err.data?.request,
                description: err.data?.description,
              },
              cause: err,
            },
          );
        }
        throw err;
      }
    });
  }

  const ignoreOwn = options.ignoreOwnChanges !== false;

  const plugin = definePlugin<FirewallSection, FirewallCheckpoint, FirewallValue, FirewallFacts>({
    name: 'firewall',
    version: packageVersion(import.meta.url),
    description:
      'nftables over native nfnetlink: tables, chains with their rules, sets and maps with their elements.',
    schema: firewallSchema,

    async probe(ctx) {
      try {
        const gen = await withClient(ctx, (nft) => nft.generation());
        return { available: true, detail: `nftables (ruleset generation ${gen.id})` };
      } catch (err) {
        return {
          available: false,
          reason: `nftables is not available here: ${(err as Error).message.replace(/\.$/, '')} (a kernel with CONFIG_NF_TABLES, and root, are needed)`,
        };
      }
    },

    async query(ctx, queryOptions) {
      const scope = queryOptions?.scope;
      const rs = await read(ctx, scope === undefined ? undefined : tablesOf(scope));
      return scope === undefined ? fullSection(rs.tables) : scopedSection(scope, rs.tables);
    },

    // For the risk guard: the management connections, and the whole of the tables the section
    // names (every chain, set and rule, not only those the section names).
    async facts(ctx, observed) {
      const [rs, connections] = await Promise.all([
        read(ctx, tablesOf(observed)),
        managementConnections(ctx),
      ]);
      return { connections, tables: rs.tables };
    },

    diff: diffSection,

    apply: (change, ctx) => applyBatch([change], ctx),
    applyBatch,

    async checkpoint(ctx, changes) {
      const refs = tablesOfChanges(changes);
      const rs = await read(ctx, refs);
      const tables = refs.map((ref) => ({
        family: ref.family,
        name: ref.name,
        table: rs.tables.find((t) => t.family === ref.family && t.name === ref.name) ?? null,
      }));
      return JSON.parse(JSON.stringify({ tables })) as FirewallCheckpoint;
    },

    async restore(token, ctx) {
      const refs = token.tables.map((t) => ({ family: t.family as NftFamily, name: t.name }));
      const rs = await read(ctx, refs);
      const desired = restoreSection(token, rs.tables);
      const observed = scopedSection(desired, rs.tables);
      const changes = diffSection(desired, observed).map((spec) => makeChange('firewall', spec));
      await applyBatch(changes, ctx);
    },

    watch(ctx, onEvent: (event: WatchEvent) => void) {
      const monitor = NftMonitor.open({ netns: ctx.netns, logger: ctx.logger });
      const pending = new Map<string, string>();
      monitor.on('event', (e) => {
        if (e.type === 'overrun') {
          onEvent({
            plugin: 'firewall',
            detail: 'nftables events were lost (overrun); read the ruleset again',
          });
          return;
        }
        if (e.type === 'generation') {
          const own = e.pid === process.pid;
          if (!(own && ignoreOwn))
            for (const [resource, detail] of pending)
              onEvent({
                plugin: 'firewall',
                resource,
                detail,
                raw: {
                  generation: e.id,
                  ...(e.pid === undefined ? {} : { pid: e.pid }),
                  ...(e.processName === undefined ? {} : { process: e.processName }),
                },
              });
          pending.clear();
          return;
        }
        const resource =
          e.type === 'table'
            ? tableResource(e.family, e.table)
            : e.type === 'chain' || e.type === 'rule'
              ? chainResource(e.family, e.table, e.name ?? '')
              : setResource(e.family, e.table, e.name ?? '');
        const what =
          e.type === 'rule'
            ? `rule ${e.action === 'new' ? 'added to' : 'deleted from'} chain ${e.name}`
            : e.type === 'element'
              ? `elements ${e.action === 'new' ? 'added to' : 'deleted from'} set ${e.name}`
              : `${e.type} ${e.name ?? e.table} ${e.action === 'new' ? 'created or changed' : 'deleted'}`;
        if (!pending.has(resource)) pending.set(resource, `${e.family} ${e.table}: ${what}`);
      });
      monitor.on('error', (err) => ctx.logger.warn({ err }, 'nftables monitor failed'));
      return Promise.resolve(() => monitor.close());
    },
  });

  return Object.assign(plugin, {
    close(): void {
      for (const entry of clients.values()) {
        clearTimeout(entry.timer);
        entry.nft.close();
      }
      clients.clear();
    },
  });
}

/** The firewall plugin with default options. */
export const firewallPlugin: FirewallPlugin = createFirewallPlugin();
