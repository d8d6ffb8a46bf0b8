import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  OpdbusError,
  definePlugin,
  formatPath,
  lazySchema,
  packageVersion,
  type Change,
  type ChangeSpec,
  type Plugin,
  type PluginContext,
  type WatchEvent,
} from '@opdbus/core';
import { Systemd1Manager, connectBus, type DbusConnection } from '@opdbus/dbus';
import { Rtnetlink } from '@opdbus/netlink';
import { z } from 'zod';
import { bytesOf, formatServer, parseServer } from './servers.js';

const RESOLVE = 'org.freedesktop.resolve1';
const MANAGER_PATH = '/org/freedesktop/resolve1';
const MANAGER_IFACE = 'org.freedesktop.resolve1.Manager';
const LINK_IFACE = 'org.freedesktop.resolve1.Link';
/** The drop-in the global settings go to, under the target's root. */
export const DNS_DROP_IN = 'etc/systemd/resolved.conf.d/60-opdbus.conf';

const modes = {
  dnssec: ['yes', 'no', 'allow-downgrade'],
  dnsOverTls: ['yes', 'no', 'opportunistic'],
  llmnr: ['yes', 'no', 'resolve'],
  multicastDns: ['yes', 'no', 'resolve'],
} as const;

/** Settings of one link, as resolved reports them (effective values). */
export interface DnsLinkSection {
  dns?: string[] | undefined;
  domains?: string[] | undefined;
  defaultRoute?: boolean | undefined;
  dnssec?: (typeof modes.dnssec)[number] | undefined;
  dnsOverTls?: (typeof modes.dnsOverTls)[number] | undefined;
  llmnr?: (typeof modes.llmnr)[number] | undefined;
  multicastDns?: (typeof modes.multicastDns)[number] | undefined;
}

/** Global settings (resolved.conf), written as a drop-in. */
export interface DnsGlobalSection {
  dns?: string[] | undefined;
  fallbackDns?: string[] | undefined;
  domains?: string[] | undefined;
  dnssec?: (typeof modes.dnssec)[number] | undefined;
  dnsOverTls?: (typeof modes.dnsOverTls)[number] | undefined;
  llmnr?: (typeof modes.llmnr)[number] | undefined;
  multicastDns?: (typeof modes.multicastDns)[number] | undefined;
}

/**
 * The values of the dns plugin's changes: the global settings a document names (`global`) or a
 * link's (`link/NAME`), each with only the fields that differ (links) or that it names (global).
 */
export type DnsValue = DnsGlobalSection | DnsLinkSection;

/** A change of the dns plugin. */
export type DnsChange = Change<DnsValue>;

/** The `dns` section. */
export interface DnsSection {
  global?: DnsGlobalSection | undefined;
  links?: Record<string, DnsLinkSection> | undefined;
}

/** What `restore` needs: each changed link's settings (by name and index) and the drop-in's text (null: absent). */
export type DnsCheckpoint = {
  links: Record<string, { ifindex: number; values: DnsLinkSection }>;
  dropIn?: string | null;
};

/** The dns plugin, typed: its section, checkpoint and change values. */
export type DnsPlugin = Plugin<DnsSection, DnsCheckpoint, DnsValue>;

const serverSchema = lazySchema(() =>
  z.string().superRefine((text, ctx) => {
    const parsed = parseServer(text);
    if (typeof parsed === 'string')
      ctx.addIssue({
        code: 'custom',
        message: `a DNS server as ADDRESS[:PORT][#NAME] ([ADDRESS]:PORT for IPv6), e.g. 192.0.2.53 or 1.1.1.1#cloudflare-dns.com: ${parsed}`,
      });
  }),
);
const domainSchema = lazySchema(() =>
  z
    .string()
    .regex(
      /^~?(\.|[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}\.?)*)$/,
      'a domain name; ~ in front makes it a routing-only domain (~. routes every query to this link)',
    ),
);
const servers = lazySchema(() => z.array(serverSchema).max(64));
const domains = lazySchema(() => z.array(domainSchema).max(256));

const linkSchema = lazySchema(() =>
  z.strictObject({
    dns: servers.optional().describe('DNS servers of the link, in order (SetLinkDNSEx).'),
    domains: domains.optional().describe('Search domains; ~name is a routing-only domain (SetLinkDomains).'),
    defaultRoute: z
      .boolean()
      .optional()
      .describe('Whether queries for domains no link routes go to this link (SetLinkDefaultRoute).'),
    dnssec: z.enum(modes.dnssec).optional().describe('DNSSEC validation (SetLinkDNSSEC).'),
    dnsOverTls: z.enum(modes.dnsOverTls).optional().describe('DNS over TLS (SetLinkDNSOverTLS).'),
    llmnr: z.enum(modes.llmnr).optional().describe('LLMNR (SetLinkLLMNR).'),
    multicastDns: z.enum(modes.multicastDns).optional().describe('Multicast DNS (SetLinkMulticastDNS).'),
  }),
);

const globalSchema = lazySchema(() =>
  z.strictObject({
    dns: servers.optional().describe('DNS= of resolved.conf.'),
    fallbackDns: servers.optional().describe('FallbackDNS= of resolved.conf.'),
    domains: domains.optional().describe('Domains= of resolved.conf.'),
    dnssec: z.enum(modes.dnssec).optional().describe('DNSSEC= of resolved.conf.'),
    dnsOverTls: z.enum(modes.dnsOverTls).optional().describe('DNSOverTLS= of resolved.conf.'),
    llmnr: z.enum(modes.llmnr).optional().describe('LLMNR= of resolved.conf.'),
    multicastDns: z.enum(modes.multicastDns).optional().describe('MulticastDNS= of resolved.conf.'),
  }),
);

/** The zod schema of the `dns` section. */
export const dnsSchema: z.ZodType<DnsSection> = lazySchema(() =>
  z
    .strictObject({
      global: globalSchema
        .optional()
        .describe(
          `Global settings: written to /${DNS_DROP_IN} under the target's root, then systemd-resolved is restarted (per-link settings survive: resolved keeps them in /run).`,
        ),
      links: z
        .record(z.string().min(1).max(15), linkSchema)
        .optional()
        .describe(
          "Per-link settings by interface name, through resolved's D-Bus API (runtime; RevertLink undoes them).",
        ),
    })
    .describe(
      'systemd-resolved: DNS servers, search and routing domains, DNSSEC, DNS over TLS, LLMNR and mDNS.',
    ),
);

/** Options of {@link createDnsPlugin}. */
export interface DnsPluginOptions {
  /** How long a restart of systemd-resolved may take (default 30 s). */
  restartTimeoutMs?: number;
}

const connect = (ctx: PluginContext): Promise<DbusConnection> =>
  connectBus({
    ...(ctx.target.busAddress === undefined ? {} : { address: ctx.target.busAddress }),
    logger: ctx.logger,
  });

type ServerTuple = [number, unknown, number, string];

function serverList(raw: unknown, ifindex?: number): string[] {
  const out: string[] = [];
  for (const entry of (raw ?? []) as unknown[][]) {
    // Manager: (ifindex, family, address, port, name); Link: (family, address, port, name).
    const [family, address, port, name] = (ifindex === undefined ? entry : entry.slice(1)) as ServerTuple;
    if (ifindex !== undefined && entry[0] !== ifindex) continue;
    out.push(formatServer({ family: family as 2 | 10, address: bytesOf(address), port, name }));
  }
  return out;
}

function domainList(raw: unknown, ifindex?: number): string[] {
  const out: string[] = [];
  for (const entry of (raw ?? []) as unknown[][]) {
    if (ifindex !== undefined && entry[0] !== ifindex) continue;
    const [name, routeOnly] = (ifindex === undefined ? entry : entry.slice(1)) as [string, boolean];
    out.push(routeOnly ? `~${name}` : name);
  }
  return out;
}

function resolvedError(what: string, err: unknown, path?: string): OpdbusError {
  if (err instanceof OpdbusError && err.code === 'OPDBUS_ERR_DNS_UNKNOWN_LINK') return err;
  const dbusError = (err as OpdbusError).data?.dbusError;
  return new OpdbusError(
    'OPDBUS_ERR_DNS_RESOLVED',
    `${path === undefined ? '' : `${path}: `}systemd-resolved: ${what}: ${(err as Error).message}`,
    {
      data: { ...(path === undefined ? {} : { path }), ...(dbusError === undefined ? {} : { dbusError }) },
      cause: err,
    },
  );
}

/** A link of the target's network namespace. */
interface LinkRef {
  name: string;
  index: number;
  loopback: boolean;
}

async function targetLinks(ctx: PluginContext): Promise<LinkRef[]> {
  await using nl = Rtnetlink.open({ netns: ctx.netns, logger: ctx.logger });
  return (await nl.listLinks()).map((l) => ({ name: l.name, index: l.index, loopback: l.type === 772 }));
}

async function linkPath(bus: DbusConnection, ifindex: number): Promise<string> {
  const [path] = await bus.call({
    destination: RESOLVE,
    path: MANAGER_PATH,
    interface: MANAGER_IFACE,
    member: 'GetLink',
    signature: 'i',
    body: [ifindex],
  });
  return path as string;
}

async function readLink(bus: DbusConnection, ifindex: number): Promise<Required<DnsLinkSection>> {
  const p = await bus.getAllProperties(RESOLVE, await linkPath(bus, ifindex), LINK_IFACE);
  return {
    dns: serverList(p.DNSEx),
    domains: domainList(p.Domains),
    defaultRoute: p.DefaultRoute as boolean,
    dnssec: p.DNSSEC as Required<DnsLinkSection>['dnssec'],
    dnsOverTls: p.DNSOverTLS as Required<DnsLinkSection>['dnsOverTls'],
    llmnr: p.LLMNR as Required<DnsLinkSection>['llmnr'],
    multicastDns: p.MulticastDNS as Required<DnsLinkSection>['multicastDns'],
  };
}

async function readGlobal(bus: DbusConnection): Promise<Required<DnsGlobalSection>> {
  const p = await bus.getAllProperties(RESOLVE, MANAGER_PATH, MANAGER_IFACE);
  return {
    dns: serverList(p.DNSEx, 0),
    fallbackDns: serverList(p.FallbackDNSEx, 0),
    domains: domainList(p.Domains, 0),
    dnssec: p.DNSSEC as Required<DnsGlobalSection>['dnssec'],
    dnsOverTls: p.DNSOverTLS as Required<DnsGlobalSection>['dnsOverTls'],
    llmnr: p.LLMNR as Required<DnsGlobalSection>['llmnr'],
    multicastDns: p.MulticastDNS as Required<DnsGlobalSection>['multicastDns'],
  };
}

const linkSetters: Record<
  keyof DnsLinkSection,
  { member: string; signature: string; body: (v: never) => unknown[] }
> = {
  dns: {
    member: 'SetLinkDNSEx',
    signature: 'ia(iayqs)',
    body: (list: string[]) => [
      list.map((text) => {
        const s = parseServer(text);
        if (typeof s === 'string') throw new OpdbusError('OPDBUS_ERR_DNS_BAD_SERVER', `${text}: ${s}.`);
        return [s.family, Buffer.from(s.address), s.port, s.name];
      }),
    ],
  },
  domains: {
    member: 'SetLinkDomains',
    signature: 'ia(sb)',
    body: (list: string[]) => [list.map((d) => (d.startsWith('~') ? [d.slice(1), true] : [d, false]))],
  },
  defaultRoute: { member: 'SetLinkDefaultRoute', signature: 'ib', body: (v: boolean) => [v] },
  dnssec: { member: 'SetLinkDNSSEC', signature: 'is', body: (v: string) => [v] },
  dnsOverTls: { member: 'SetLinkDNSOverTLS', signature: 'is', body: (v: string) => [v] },
  llmnr: { member: 'SetLinkLLMNR', signature: 'is', body: (v: string) => [v] },
  multicastDns: { member: 'SetLinkMulticastDNS', signature: 'is', body: (v: string) => [v] },
};

async function setLinkField(
  bus: DbusConnection,
  ifindex: number,
  field: keyof DnsLinkSection,
  value: unknown,
  path: string,
): Promise<void> {
  const setter = linkSetters[field];
  try {
    await bus.call({
      destination: RESOLVE,
      path: MANAGER_PATH,
      interface: MANAGER_IFACE,
      member: setter.member,
      signature: setter.signature,
      body: [ifindex, ...setter.body(value as never)],
    });
  } catch (err) {
    if (err instanceof OpdbusError && err.code === 'OPDBUS_ERR_DNS_BAD_SERVER') throw err;
    throw resolvedError(`${setter.member} refused ${JSON.stringify(value)}`, err, path);
  }
}

const dropInKeys: Record<keyof DnsGlobalSection, string> = {
  dns: 'DNS',
  fallbackDns: 'FallbackDNS',
  domains: 'Domains',
  dnssec: 'DNSSEC',
  dnsOverTls: 'DNSOverTLS',
  llmnr: 'LLMNR',
  multicastDns: 'MulticastDNS',
};

function readDropIn(root: string): string | null {
  try {
    return readFileSync(join(root, DNS_DROP_IN), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function writeDropIn(root: string, text: string | null): void {
  const file = join(root, DNS_DROP_IN);
  if (text === null) {
    rmSync(file, { force: true });
    return;
  }
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o755 });
  const tmp = `${file}.opdbus-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, file);
}

/** The drop-in with the given settings replacing those it had (one `KEY=` line each). */
function mergedDropIn(previous: string | null, settings: DnsGlobalSection): string {
  const values = new Map<string, string>();
  for (const line of (previous ?? '').split('\n')) {
    const m = /^\s*(\w+)\s*=(.*)$/.exec(line);
    if (m !== null) values.set(m[1]!, m[2]!.trim());
  }
  for (const [field, key] of Object.entries(dropInKeys)) {
    const value = settings[field as keyof DnsGlobalSection];
    if (value === undefined) continue;
    values.set(key, Array.isArray(value) ? value.join(' ') : String(value));
  }
  const lines = [...values].map(([k, v]) => `${k}=${v}`);
  return `# Written by op-dbus (plugins.dns.global); changes here are drift.\n[Resolve]\n${lines.join('\n')}\n`;
}

async function restartResolved(bus: DbusConnection, timeoutMs: number): Promise<void> {
  const manager = new Systemd1Manager(bus);
  await manager.subscribe();
  const finished = new Map<string, string>();
  let waiter: ((job: string, result: string) => void) | undefined;
  const subscription = await manager.onJobRemoved((_id, job, _unit, result) => {
    finished.set(job, result);
    waiter?.(job, result);
  });
  try {
    // Restarts in a row (a rollback after an apply, retries) would hit the unit's start rate
    // limit and fail: clear it first, for this unit only.
    await manager.resetFailedUnit('systemd-resolved.service');
    const job = await manager.restartUnit('systemd-resolved.service', 'replace');
    const result =
      finished.get(job) ??
      (await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`the restart job ${job} did not finish within ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiter = (done, r) => {
          if (done !== job) return;
          clearTimeout(timer);
          resolve(r);
        };
      }));
    if (result !== 'done') throw new Error(`restarting systemd-resolved.service ended with "${result}"`);
  } finally {
    await subscription.unsubscribe();
  }
}

const linkPathOf = (name: string, field?: string): string =>
  formatPath(
    field === undefined ? ['plugins', 'dns', 'links', name] : ['plugins', 'dns', 'links', name, field],
  );

function resolveLink(links: LinkRef[], name: string): LinkRef {
  const link = links.find((l) => l.name === name);
  if (link === undefined || link.loopback) {
    throw new OpdbusError(
      'OPDBUS_ERR_DNS_UNKNOWN_LINK',
      `${linkPathOf(name)}: ${link === undefined ? `no network interface "${name}" in the target (it has ${links.map((l) => l.name).join(', ') || 'none'})` : `${name} is the loopback interface, which resolved keeps no settings for`}; check the name with \`ip link\`.`,
      { data: { path: linkPathOf(name), link: name } },
    );
  }
  return link;
}

function pick<T extends object>(values: T, fields: readonly string[]): Partial<T> {
  const out: Partial<T> = {};
  for (const f of fields)
    if (f in values) (out as Record<string, unknown>)[f] = (values as Record<string, unknown>)[f];
  return out;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * Create the DNS plugin: systemd-resolved over D-Bus on the target's bus. Per-link settings go
 * through resolve1's SetLink* methods (runtime state, as resolvectl sets it); global settings go
 * to a drop-in (`/etc/systemd/resolved.conf.d/60-opdbus.conf` under the target's root) followed by
 * a restart of systemd-resolved (systemd 252 has no reload for resolved.conf). Interface names are
 * resolved to indexes over rtnetlink in the target's network namespace. `watch` follows resolve1's
 * PropertiesChanged signals.
 */
export function createDnsPlugin(options: DnsPluginOptions = {}): DnsPlugin {
  const restartTimeoutMs = options.restartTimeoutMs ?? 30_000;
  const root = (ctx: PluginContext): string => ctx.target.root ?? '/';

  return definePlugin<DnsSection, DnsCheckpoint, DnsValue>({
    name: 'dns',
    version: packageVersion(import.meta.url),
    description:
      'systemd-resolved over D-Bus: per-link DNS servers, domains and modes; global settings by drop-in.',
    schema: dnsSchema,

    async probe(ctx) {
      try {
        await using bus = await connect(ctx);
        const p = await bus.getProperty(RESOLVE, MANAGER_PATH, MANAGER_IFACE, 'DNSSEC');
        return { available: true, detail: `systemd-resolved (global DNSSEC ${String(p)})` };
      } catch (err) {
        return {
          available: false,
          reason: `systemd-resolved is not reachable on the bus: ${(err as Error).message}`,
        };
      }
    },

    async query(ctx, queryOptions) {
      await using bus = await connect(ctx);
      const links = await targetLinks(ctx);
      const scope = queryOptions?.scope;
      const out: DnsSection = {};
      try {
        if (scope === undefined || scope.global !== undefined) out.global = await readGlobal(bus);
        const names =
          scope === undefined
            ? links.filter((l) => !l.loopback).map((l) => l.name)
            : Object.keys(scope.links ?? {});
        if (names.length > 0 || scope === undefined) out.links = {};
        for (const name of names) out.links![name] = await readLink(bus, resolveLink(links, name).index);
      } catch (err) {
        throw resolvedError('reading its settings failed', err);
      }
      return out;
    },

    diff(desired, observed) {
      const changes: ChangeSpec<DnsValue>[] = [];
      if (desired.global !== undefined) {
        const fields = Object.keys(desired.global).filter(
          (f) => desired.global![f as keyof DnsGlobalSection] !== undefined,
        );
        const before = pick(observed.global ?? {}, fields);
        const after = pick(desired.global, fields);
        if (!same(before, after)) {
          changes.push({
            resource: 'global',
            op: 'update',
            before,
            after,
            summary: `set resolved.conf ${fields.filter((f) => !same(before[f as keyof DnsGlobalSection], after[f as keyof DnsGlobalSection])).join(', ')} (drop-in, restart)`,
          });
        }
      }
      for (const [name, want] of Object.entries(desired.links ?? {})) {
        const have = observed.links?.[name] ?? {};
        const fields = Object.keys(want).filter((f) => want[f as keyof DnsLinkSection] !== undefined);
        const differing = fields.filter(
          (f) => !same(have[f as keyof DnsLinkSection], want[f as keyof DnsLinkSection]),
        );
        if (differing.length === 0) continue;
        changes.push({
          resource: `link/${name}`,
          op: 'update',
          before: pick(have, differing),
          after: pick(want, differing),
          summary: `set DNS of ${name}: ${differing.map((f) => `${f} ${JSON.stringify(want[f as keyof DnsLinkSection])}`).join(', ')}`,
        });
      }
      return changes;
    },

    async apply(change, ctx) {
      await using bus = await connect(ctx);
      if (change.resource === 'global') {
        writeDropIn(root(ctx), mergedDropIn(readDropIn(root(ctx)), change.after as DnsGlobalSection));
        try {
          await restartResolved(bus, restartTimeoutMs);
        } catch (err) {
          throw resolvedError('restarting it to read the new drop-in failed', err, 'plugins.dns.global');
        }
        return;
      }
      const name = change.resource.slice('link/'.length);
      const link = resolveLink(await targetLinks(ctx), name);
      for (const [field, value] of Object.entries(change.after as DnsLinkSection))
        await setLinkField(bus, link.index, field as keyof DnsLinkSection, value, linkPathOf(name, field));
    },

    async checkpoint(ctx, changes) {
      await using bus = await connect(ctx);
      const token: DnsCheckpoint = { links: {} };
      const links = await targetLinks(ctx);
      for (const change of changes) {
        if (change.resource === 'global') token.dropIn = readDropIn(root(ctx));
        else {
          const name = change.resource.slice('link/'.length);
          const link = resolveLink(links, name);
          token.links[name] = {
            ifindex: link.index,
            values: await readLink(bus, link.index),
          };
        }
      }
      return token;
    },

    async restore(token, ctx) {
      await using bus = await connect(ctx);
      if (token.dropIn !== undefined && readDropIn(root(ctx)) !== token.dropIn) {
        writeDropIn(root(ctx), token.dropIn);
        await restartResolved(bus, restartTimeoutMs);
      }
      for (const [name, { ifindex, values }] of Object.entries(token.links)) {
        const now = await readLink(bus, ifindex);
        if (same(now, values)) continue;
        // Back to what the link had from elsewhere (networkd, defaults), then what differs from the record.
        await bus.call({
          destination: RESOLVE,
          path: MANAGER_PATH,
          interface: MANAGER_IFACE,
          member: 'RevertLink',
          signature: 'i',
          body: [ifindex],
        });
        const reverted = await readLink(bus, ifindex);
        for (const [field, value] of Object.entries(values))
          if (!same(reverted[field as keyof DnsLinkSection], value))
            await setLinkField(bus, ifindex, field as keyof DnsLinkSection, value, linkPathOf(name, field));
      }
    },

    async watch(ctx, onEvent: (event: WatchEvent) => void) {
      const bus = await connect(ctx);
      const subscription = await bus.subscribe(
        {
          sender: RESOLVE,
          interface: 'org.freedesktop.DBus.Properties',
          member: 'PropertiesChanged',
          pathNamespace: MANAGER_PATH,
        },
        (message) => {
          const [iface, changed, invalidated] = message.body as [string, Record<string, unknown>, string[]];
          const properties = [...Object.keys(changed ?? {}), ...(invalidated ?? [])];
          onEvent({
            plugin: 'dns',
            resource:
              message.path === MANAGER_PATH
                ? 'global'
                : `link ${message.path.slice(message.path.lastIndexOf('/') + 1)}`,
            detail: `${iface} ${properties.join(', ')} changed on ${message.path}`,
            raw: { path: message.path, interface: iface, properties },
          });
        },
      );
      return async () => {
        await subscription.unsubscribe();
        await bus.close();
      };
    },
  });
}

/** The DNS plugin with default options. */
export const dnsPlugin: DnsPlugin = createDnsPlugin();
