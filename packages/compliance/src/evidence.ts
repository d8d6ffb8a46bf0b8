import { stat } from 'node:fs/promises';
import type { Engine } from '@opdbus/core';
import { verifyLedger, type NoteVerifier, type SnapshotInfo } from '@opdbus/ledger';
import type { EvidenceQueryId } from './framework.js';

/** The outcome of a control, an evidence query or one evidence item. */
export type ControlStatus = 'pass' | 'fail' | 'not-applicable' | 'manual';

/**
 * A ledger entry an evidence item rests on. The entry itself and its RFC 9162 inclusion proof to
 * the bundle's checkpoint are in the bundle's `ledger-bundle.json` under the same index (once,
 * however many items cite it).
 */
export interface EntryRef {
  index: number;
  /** The entry's leaf hash, hex: SHA-256(0x00 ‖ its canonical JSON). */
  leafHash: string;
}

/** One piece of evidence: a transaction, a host value, a key file. */
export interface EvidenceItem {
  /** Stable within its query: `entry:12`, `sysctl:net.ipv4.tcp_syncookies`, `chain:inet/filter/input`. */
  id: string;
  status: ControlStatus;
  description: string;
  observed?: unknown;
  expected?: unknown;
  /** The ledger entries this item rests on (their proofs are in `ledger-bundle.json`). */
  entries: EntryRef[];
}

/** The result of one evidence query. */
export interface EvidenceResult {
  query: EvidenceQueryId;
  /** Where the evidence comes from: the ledger's entries, the host observed now, the state directory. */
  source: 'ledger' | 'host' | 'state-dir';
  status: ControlStatus;
  summary: string;
  params?: Record<string, unknown>;
  items: EvidenceItem[];
}

/** What a host check needs: a plugin's observed state, or why it cannot be read here. */
export interface HostObserver {
  query(plugin: string): Promise<{ state: unknown } | { unavailable: string }>;
}

/**
 * A {@link HostObserver} over an op-dbus `Engine`: each plugin's own query in the engine's target
 * (network namespace, bus, root), never a CLI tool. A plugin that is not registered or whose probe
 * fails is reported as unavailable with the reason.
 */
export function engineObserver(engine: Engine): HostObserver {
  return {
    async query(plugin) {
      if (engine.registry.get(plugin) === undefined)
        return { unavailable: `op-dbus has no "${plugin}" plugin registered` };
      const probe = (await engine.probe([plugin]))[plugin];
      if (probe !== undefined && !probe.available) return { unavailable: probe.reason };
      const state = await engine.query([plugin]);
      return { state: state[plugin] };
    },
  };
}

/** A ledger entry as the evidence queries read it. */
export interface EntryView {
  index: number;
  value: unknown;
}

/** Everything the evidence queries read. */
export interface EvidenceSources {
  /** Every ledger entry up to the checkpoint the report is proven against, in order. */
  entries: readonly EntryView[];
  /** The period the report covers: entries whose `at` is in [from, to). */
  period: { from?: Date; to?: Date };
  /** The ledger directory, for the full verification of `ledger.integrity` (omit offline). */
  ledgerDir?: string;
  verifier: NoteVerifier;
  /** Key files whose protection `keys.protected` checks. */
  keyFiles?: readonly { name: string; file: string }[];
  /** The host, for the `host.*` checks; without it they are `manual`. */
  host?: HostObserver;
  /**
   * The snapshots on disk, each checked against the ledger (`SnapshotManager.list()`); without
   * it `snapshots.coverage` judges from the ledger alone.
   */
  snapshots?: () => Promise<readonly SnapshotInfo[]>;
  /** The reference of a ledger entry an item rests on (it goes into the ledger bundle). */
  ref(index: number): EntryRef;
}

type Json = Record<string, unknown>;

const obj = (v: unknown): Json | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;

function inPeriod(value: unknown, period: EvidenceSources['period']): boolean {
  const at = obj(value)?.at;
  if (typeof at !== 'string') return false;
  const t = Date.parse(at);
  if (Number.isNaN(t)) return false;
  return (
    (period.from === undefined || t >= period.from.getTime()) &&
    (period.to === undefined || t < period.to.getTime())
  );
}

/** Combine item (or result) statuses: fail beats manual beats pass beats not-applicable. */
export function combineStatus(
  statuses: readonly ControlStatus[],
  empty: ControlStatus = 'not-applicable',
): ControlStatus {
  if (statuses.length === 0) return empty;
  if (statuses.includes('fail')) return 'fail';
  if (statuses.includes('manual')) return 'manual';
  if (statuses.includes('pass')) return 'pass';
  return 'not-applicable';
}

function result(
  query: EvidenceQueryId,
  source: EvidenceResult['source'],
  items: EvidenceItem[],
  summary: string,
  empty: ControlStatus = 'not-applicable',
): EvidenceResult {
  return {
    query,
    source,
    status: combineStatus(
      items.map((i) => i.status),
      empty,
    ),
    summary,
    items,
  };
}

const ENGINE_KINDS = new Set(['apply', 'rollback', 'confirm']);

function engineSteps(sources: EvidenceSources): EntryView[] {
  return sources.entries.filter(
    (e) => ENGINE_KINDS.has(String(obj(e.value)?.kind)) && inPeriod(e.value, sources.period),
  );
}

function describeStep(v: Json): string {
  const actor = obj(v.actor);
  return `${String(v.kind)} ${typeof v.txId === 'string' ? v.txId : ''} (${typeof v.status === 'string' ? v.status : ''}) at ${String(v.at)} by ${
    actor === undefined ? 'nobody recorded' : `${String(actor.name)} (uid ${String(actor.uid)})`
  }`.replace(/\s+/g, ' ');
}

function attribution(sources: EvidenceSources): EvidenceResult {
  const items = engineSteps(sources).map((e): EvidenceItem => {
    const v = obj(e.value)!;
    const actor = obj(v.actor);
    const proc = obj(v.process);
    const missing = [
      typeof actor?.name === 'string' && actor.name !== '' ? undefined : 'actor name',
      typeof actor?.uid === 'number' ? undefined : 'actor uid',
      typeof proc?.pid === 'number' ? undefined : 'process',
      typeof v.host === 'string' || v.v === 1 ? undefined : 'host',
    ].filter((m) => m !== undefined);
    return {
      id: `entry:${e.index}`,
      status: missing.length === 0 ? 'pass' : 'fail',
      description:
        missing.length === 0 ? describeStep(v) : `${describeStep(v)}: the entry lacks ${missing.join(', ')}`,
      observed: { actor: actor ?? null, host: v.host ?? null, at: v.at },
      entries: [sources.ref(e.index)],
    };
  });
  const failed = items.filter((i) => i.status === 'fail').length;
  return result(
    'ledger.attribution',
    'ledger',
    items,
    items.length === 0
      ? 'No transaction was applied, rolled back or confirmed in the period.'
      : `${items.length} recorded step(s) in the period; ${items.length - failed} name who acted, when, from which process and on which host${failed > 0 ? `; ${failed} do not` : ''}.`,
  );
}

function changeRecords(sources: EvidenceSources): EvidenceResult {
  const items = engineSteps(sources)
    .filter((e) => obj(e.value)?.kind === 'apply')
    .map((e): EvidenceItem => {
      const v = obj(e.value)!;
      const records = Array.isArray(v.changeRecords) ? (v.changeRecords as unknown[]) : undefined;
      const complete =
        records !== undefined &&
        records.every((r) => {
          const c = obj(r);
          return c !== undefined && 'before' in c && 'after' in c && typeof c.resource === 'string';
        });
      return {
        id: `entry:${e.index}`,
        status: complete ? 'pass' : 'fail',
        description: complete
          ? `${describeStep(v)}: ${records.length} change(s) recorded with before and after values`
          : `${describeStep(v)}: no per-change records (format ${String(v.v)} entry)`,
        observed: records?.map((r) => obj(r)?.summary ?? null) ?? null,
        entries: [sources.ref(e.index)],
      };
    });
  return result(
    'ledger.change-records',
    'ledger',
    items,
    items.length === 0
      ? 'No apply in the period.'
      : `${items.length} apply step(s) in the period, each expected to record every change (plugin, resource, before, after, risk).`,
  );
}

function outcomes(sources: EvidenceSources): EvidenceResult {
  const byTx = new Map<string, EntryView[]>();
  for (const e of sources.entries) {
    const txId = obj(e.value)?.txId;
    if (typeof txId === 'string') byTx.set(txId, [...(byTx.get(txId) ?? []), e]);
  }
  const later = (txId: string, after: number, kinds: string[]): EntryView | undefined =>
    byTx.get(txId)?.find((e) => e.index > after && kinds.includes(String(obj(e.value)?.kind)));
  const items: EvidenceItem[] = [];
  for (const e of engineSteps(sources)) {
    const v = obj(e.value)!;
    const txId = typeof v.txId === 'string' ? v.txId : '';
    const status = String(v.status);
    if (v.kind === 'apply') {
      if (status === 'committed')
        items.push({
          id: `entry:${e.index}`,
          status: 'pass',
          description: `transaction ${txId} applied, verified and committed`,
          entries: [sources.ref(e.index)],
        });
      else if (status === 'rolled-back' || status === 'pending-confirm') {
        const end = later(txId, e.index, ['rollback', 'confirm']);
        const endStatus = String(obj(end?.value)?.status);
        items.push({
          id: `entry:${e.index}`,
          status:
            end === undefined
              ? status === 'pending-confirm'
                ? 'manual'
                : 'fail'
              : endStatus === 'restore-failed'
                ? 'fail'
                : 'pass',
          description:
            end === undefined
              ? status === 'pending-confirm'
                ? `transaction ${txId} is waiting for confirmation (commit-confirmed)`
                : `transaction ${txId} failed and no rollback is recorded`
              : `transaction ${txId} ${status === 'rolled-back' ? 'failed to apply and was rolled back' : 'was applied commit-confirmed'}; then ${String(obj(end.value)?.kind)}: ${endStatus}`,
          entries:
            end === undefined ? [sources.ref(e.index)] : [sources.ref(e.index), sources.ref(end.index)],
        });
      } else
        items.push({
          id: `entry:${e.index}`,
          status: 'fail',
          description: `transaction ${txId} ended ${status}: the host was left between states`,
          entries: [sources.ref(e.index)],
        });
    } else if (v.kind === 'rollback' && status === 'restore-failed')
      items.push({
        id: `entry:${e.index}`,
        status: 'fail',
        description: `rollback of ${txId} did not restore: ${Array.isArray(v.residual) ? (v.residual as unknown[]).join(', ') : 'see the entry'}`,
        entries: [sources.ref(e.index)],
      });
  }
  return result(
    'ledger.outcomes',
    'ledger',
    items,
    items.length === 0
      ? 'No transaction in the period.'
      : 'Every transaction in the period is expected to end verified and committed, or rolled back to a verified restore.',
  );
}

function drift(sources: EvidenceSources): EvidenceResult {
  const items = sources.entries
    .filter((e) => obj(e.value)?.kind === 'drift' && inPeriod(e.value, sources.period))
    .map((e): EvidenceItem => ({
      id: `entry:${e.index}`,
      status: 'pass',
      description: `drift recorded at ${String(obj(e.value)?.at)}`,
      observed: obj(e.value)?.changeRecords ?? null,
      entries: [sources.ref(e.index)],
    }));
  return result(
    'ledger.drift',
    'ledger',
    items,
    items.length === 0
      ? 'The ledger records no drift in the period: drift watching (opdbusd) is not evidenced here and must be checked by other means.'
      : `${items.length} drift event(s) recorded in the period.`,
    'manual',
  );
}

async function snapshotCoverage(sources: EvidenceSources): Promise<EvidenceResult> {
  const snapshotOf = new Map<string, EntryView>();
  for (const e of sources.entries) {
    const v = obj(e.value);
    const txId = obj(v?.trigger)?.txId;
    if (v?.kind === 'snapshot.created' && typeof txId === 'string' && !snapshotOf.has(txId))
      snapshotOf.set(txId, e);
  }
  const pruned = new Map(
    sources.entries
      .filter((e) => obj(e.value)?.kind === 'snapshot.pruned')
      .map((e) => [String(obj(e.value)?.id), e.index] as const),
  );
  const onDisk =
    sources.snapshots === undefined ? undefined : new Map((await sources.snapshots()).map((s) => [s.id, s]));
  const items = engineSteps(sources)
    .filter((e) => {
      const v = obj(e.value)!;
      return v.kind === 'apply' && (v.status === 'committed' || v.status === 'pending-confirm');
    })
    .map((e): EvidenceItem => {
      const txId = String(obj(e.value)!.txId);
      const snap = snapshotOf.get(txId);
      const sv = obj(snap?.value);
      const encrypted = typeof sv?.cipherHash === 'string';
      const entries =
        snap === undefined ? [sources.ref(e.index)] : [sources.ref(e.index), sources.ref(snap.index)];
      if (snap === undefined || !encrypted)
        return {
          id: `entry:${e.index}`,
          status: 'fail',
          description: `transaction ${txId}: no encrypted snapshot of the state after it is recorded`,
          observed: null,
          entries,
        };
      const id = String(sv?.id);
      const prunedAt = pruned.get(id);
      const disk = onDisk?.get(id);
      const where =
        onDisk === undefined
          ? 'not checked on disk'
          : prunedAt !== undefined && disk === undefined
            ? `pruned by retention (entry ${prunedAt})`
            : disk === undefined
              ? 'not on disk'
              : disk.status === 'ok'
                ? 'on disk, matching the ledger'
                : `${disk.status}: ${disk.problem ?? ''}`;
      const ok =
        onDisk === undefined || (prunedAt !== undefined && disk === undefined) || disk?.status === 'ok';
      if (prunedAt !== undefined) entries.push(sources.ref(prunedAt));
      return {
        id: `entry:${e.index}`,
        status: ok ? 'pass' : 'fail',
        description: `transaction ${txId}: snapshot ${id} (AES-256-GCM, ciphertext ${String(sv?.cipherHash).slice(0, 12)}…, backend ${String(sv?.backend)}), ${where}`,
        observed: {
          id,
          stateHash: sv?.stateHash ?? null,
          cipherHash: sv?.cipherHash ?? null,
          onDisk: disk?.status ?? null,
        },
        entries,
      };
    });
  // Snapshots on disk the ledger does not vouch for: replayed, altered or unknown.
  for (const info of onDisk?.values() ?? [])
    if (info.status !== 'ok' && info.status !== 'missing')
      items.push({
        id: `snapshot:${info.id}`,
        status: 'fail',
        description: `snapshot ${info.id} on disk is ${info.status}: ${info.problem ?? ''}`,
        observed: info.status,
        entries: info.ledgerIndex === undefined ? [] : [sources.ref(info.ledgerIndex)],
      });
  return result(
    'snapshots.coverage',
    'ledger',
    items,
    items.length === 0
      ? 'No committed transaction in the period.'
      : `Every committed transaction is expected to leave an encrypted snapshot of the state it produced, recorded in the ledger${onDisk === undefined ? '' : ' and still on disk unless retention pruned it'}.`,
  );
}

function snapshotRestores(sources: EvidenceSources): EvidenceResult {
  const items = sources.entries
    .filter((e) => obj(e.value)?.kind === 'snapshot.restored' && inPeriod(e.value, sources.period))
    .map((e): EvidenceItem => {
      const v = obj(e.value)!;
      const ok = ['committed', 'pending-confirm', 'no-changes'].includes(String(v.status));
      return {
        id: `entry:${e.index}`,
        status: ok ? 'pass' : 'fail',
        description: `snapshot ${String(v.id)} restored: ${String(v.status)}`,
        entries: [sources.ref(e.index)],
      };
    });
  return result(
    'snapshots.restores',
    'ledger',
    items,
    items.length === 0
      ? 'No snapshot was restored in the period (a restore test is evidenced by a `snapshot.restored` entry).'
      : `${items.length} restore(s) in the period.`,
  );
}

async function integrity(sources: EvidenceSources): Promise<EvidenceResult> {
  if (sources.ledgerDir === undefined)
    return result(
      'ledger.integrity',
      'ledger',
      [],
      'The ledger files were not available to verify.',
      'manual',
    );
  const report = await verifyLedger(sources.ledgerDir, { verifier: sources.verifier });
  const item: EvidenceItem = {
    id: 'ledger',
    status: report.ok ? 'pass' : 'fail',
    description: report.ok
      ? `the whole log verifies: ${report.size} entries, ${report.checkpoints} signed checkpoints, every record's checksum and order`
      : `TAMPERING: ${report.tampering?.message ?? 'the ledger does not verify'}`,
    observed: { size: report.size, checkpoints: report.checkpoints, root: report.root },
    entries: [],
  };
  return result(
    'ledger.integrity',
    'ledger',
    [item],
    'The full ledger verified on the host when the report was made; the checkpoint in this bundle is signed with the key you pin.',
  );
}

async function keysProtected(sources: EvidenceSources): Promise<EvidenceResult> {
  const items: EvidenceItem[] = [];
  for (const { name, file } of sources.keyFiles ?? []) {
    let info;
    try {
      info = await stat(file);
    } catch (err) {
      items.push({
        id: `key:${name}`,
        status: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not-applicable' : 'fail',
        description: `${name} (${file}): ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not created yet' : (err as Error).message}`,
        entries: [],
      });
      continue;
    }
    const mode = info.mode & 0o777;
    const ok = (mode & 0o077) === 0 && info.uid === (process.getuid?.() ?? info.uid);
    items.push({
      id: `key:${name}`,
      status: ok ? 'pass' : 'fail',
      description: `${name} (${file}): mode ${mode.toString(8).padStart(4, '0')}, owner uid ${info.uid}${ok ? '' : ': others can read or write it'}`,
      observed: { mode: mode.toString(8).padStart(4, '0'), uid: info.uid },
      expected: { mode: '0600 or stricter', uid: process.getuid?.() ?? null },
      entries: [],
    });
  }
  return result(
    'keys.protected',
    'state-dir',
    items,
    'The keys that sign the ledger and encrypt the snapshots are readable by their owner only.',
    'manual',
  );
}

/** The sysctl values `host.sysctl` checks when a mapping gives none (a CIS-style hardening baseline). */
export const defaultSysctlBaseline: Readonly<Record<string, string | readonly string[]>> = {
  'net.ipv4.ip_forward': '0',
  'net.ipv4.conf.all.accept_redirects': '0',
  'net.ipv4.conf.all.send_redirects': '0',
  'net.ipv4.conf.all.accept_source_route': '0',
  'net.ipv4.conf.all.rp_filter': ['1', '2'],
  'net.ipv4.conf.all.log_martians': '1',
  'net.ipv4.icmp_echo_ignore_broadcasts': '1',
  'net.ipv4.tcp_syncookies': '1',
  'net.ipv6.conf.all.accept_redirects': '0',
  'kernel.randomize_va_space': '2',
  'kernel.kptr_restrict': ['1', '2'],
  'kernel.dmesg_restrict': '1',
  'fs.protected_symlinks': '1',
  'fs.protected_hardlinks': '1',
};

/** The latest ledger entry that changed (or undid a change of) a plugin's resource. */
function lastChange(
  sources: EvidenceSources,
  plugin: string,
  match: (resource: string) => boolean,
): number[] {
  for (let i = sources.entries.length - 1; i >= 0; i--) {
    const e = sources.entries[i]!;
    const v = obj(e.value);
    if (v?.kind !== 'apply' && v?.kind !== 'rollback') continue;
    const records = Array.isArray(v.changeRecords) ? (v.changeRecords as unknown[]) : [];
    if (
      records.some((r) => {
        const c = obj(r);
        return (
          c?.plugin === plugin && typeof c.resource === 'string' && match(c.resource) && c.applied !== false
        );
      })
    )
      return [e.index];
  }
  return [];
}

const normalise = (v: unknown): string => String(v).trim().replace(/\s+/g, ' ');

async function hostSysctl(sources: EvidenceSources, params: Json | undefined): Promise<EvidenceResult> {
  const expectedMap = (obj(params?.expect) ?? defaultSysctlBaseline) as Record<string, unknown>;
  const observed = await sources.host?.query('sysctl');
  if (observed === undefined || 'unavailable' in observed)
    return result(
      'host.sysctl',
      'host',
      [],
      `The sysctl values could not be read: ${observed === undefined ? 'no host to observe' : observed.unavailable.replace(/\.+$/, '')}.`,
      'manual',
    );
  const values = obj(observed.state) ?? {};
  const items = Object.entries(expectedMap).map(([key, want]): EvidenceItem => {
    const wanted = (Array.isArray(want) ? want : [want]).map(normalise);
    const has = key in values;
    const value = has ? normalise(values[key]) : undefined;
    const ok = value !== undefined && wanted.includes(value);
    return {
      id: `sysctl:${key}`,
      status: !has ? 'not-applicable' : ok ? 'pass' : 'fail',
      description: !has
        ? `${key}: not present on this kernel or in this namespace`
        : `${key} = ${value}${ok ? '' : ` (expected ${wanted.join(' or ')})`}`,
      observed: value ?? null,
      expected: wanted.length === 1 ? wanted[0] : wanted,
      entries: lastChange(sources, 'sysctl', (r) => r === key).map((i) => sources.ref(i)),
    };
  });
  const failed = items.filter((i) => i.status === 'fail').length;
  return {
    ...result(
      'host.sysctl',
      'host',
      items,
      `${items.length} kernel hardening values read through the sysctl plugin; ${failed} differ from the baseline.`,
    ),
    ...(params === undefined ? {} : { params }),
  };
}

interface ChainView {
  name?: string;
  hook?: string;
  type?: string;
  policy?: string;
}

async function hostFirewall(sources: EvidenceSources): Promise<EvidenceResult> {
  const observed = await sources.host?.query('firewall');
  if (observed === undefined || 'unavailable' in observed)
    return result(
      'host.firewall',
      'host',
      [],
      `The firewall could not be read: ${observed === undefined ? 'no host to observe' : observed.unavailable.replace(/\.+$/, '')}.`,
      'manual',
    );
  const tables = (obj(observed.state)?.tables ?? []) as {
    family: string;
    name: string;
    chains?: ChainView[];
  }[];
  const items: EvidenceItem[] = [];
  let inputCovered = { ip: false, ip6: false };
  for (const table of tables) {
    for (const chain of table.chains ?? []) {
      if (chain.hook !== 'input' && chain.hook !== 'forward') continue;
      if (chain.type !== undefined && chain.type !== 'filter') continue;
      const policy = chain.policy ?? 'accept';
      const drop = policy === 'drop';
      if (drop && chain.hook === 'input') {
        if (table.family === 'inet' || table.family === 'ip') inputCovered = { ...inputCovered, ip: true };
        if (table.family === 'inet' || table.family === 'ip6') inputCovered = { ...inputCovered, ip6: true };
      }
      const where = `${table.family}/${table.name}/${String(chain.name)}`;
      items.push({
        id: `chain:${where}`,
        status: drop ? 'pass' : 'fail',
        description: `chain ${where} (hook ${chain.hook}): default policy ${policy}`,
        observed: policy,
        expected: 'drop',
        entries: lastChange(
          sources,
          'firewall',
          (r) => r === `chain/${where}` || r === `table/${table.family}/${table.name}`,
        ).map((i) => sources.ref(i)),
      });
    }
  }
  for (const family of ['ip', 'ip6'] as const) {
    if (!inputCovered[family])
      items.push({
        id: `input:${family}`,
        status: 'fail',
        description: `no ${family === 'ip' ? 'IPv4' : 'IPv6'} input chain with a default policy of drop: what no rule accepts is let in`,
        observed: null,
        expected: 'an input filter chain with policy drop (family inet or ' + family + ')',
        entries: [],
      });
  }
  return result(
    'host.firewall',
    'host',
    items,
    'The nftables ruleset read over nfnetlink through the firewall plugin: inbound (and forwarded) traffic is denied unless a rule accepts it.',
  );
}

async function hostTimeSync(sources: EvidenceSources): Promise<EvidenceResult> {
  const observed = await sources.host?.query('timedate');
  if (observed === undefined || 'unavailable' in observed)
    return result(
      'host.time-sync',
      'host',
      [],
      `Time synchronisation could not be read through systemd-timedated: ${observed === undefined ? 'no host to observe' : observed.unavailable.replace(/\.+$/, '')}.`,
      'manual',
    );
  const state = obj(observed.state) ?? {};
  const ok = state.ntp === true;
  return result(
    'host.time-sync',
    'host',
    [
      {
        id: 'timedate:ntp',
        status: ok ? 'pass' : 'fail',
        description: `network time synchronisation (systemd-timedated NTP) is ${ok ? 'on' : 'off'}; time zone ${String(state.timezone)}`,
        observed: { ntp: state.ntp ?? null, timezone: state.timezone ?? null },
        expected: { ntp: true },
        entries: lastChange(sources, 'timedate', (r) => r === 'ntp').map((i) => sources.ref(i)),
      },
    ],
    'NTP as systemd-timedated reports it over D-Bus.',
  );
}

/** Run one evidence query. */
export async function runEvidenceQuery(
  query: EvidenceQueryId,
  sources: EvidenceSources,
  params?: Record<string, unknown>,
): Promise<EvidenceResult> {
  switch (query) {
    case 'ledger.integrity':
      return integrity(sources);
    case 'ledger.attribution':
      return attribution(sources);
    case 'ledger.change-records':
      return changeRecords(sources);
    case 'ledger.outcomes':
      return outcomes(sources);
    case 'ledger.drift':
      return drift(sources);
    case 'snapshots.coverage':
      return snapshotCoverage(sources);
    case 'snapshots.restores':
      return snapshotRestores(sources);
    case 'keys.protected':
      return keysProtected(sources);
    case 'host.sysctl':
      return hostSysctl(sources, params);
    case 'host.firewall':
      return hostFirewall(sources);
    case 'host.time-sync':
      return hostTimeSync(sources);
  }
}
