// The replica (IDL) against a real ovsdb-server: built from the initial rows, kept current,
// resynchronised after the connection drops — resuming with monitor_cond_since on a clustered
// database — and the fallback to the old `monitor` method when the server refuses monitor_cond.
import { probeSandbox, startOvs, type OvsSandbox } from '@opdbus/sandbox';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OvsdbClient } from '../src/client.js';
import type { ChangeInfo, Replica, RowChange } from '../src/replica.js';
import type { Bridge, OpenVSwitchTables } from '../src/schemas/openVSwitch.js';
import { describeIf, nextEvent, serverCtl, vsctl, vsctlSync } from './helpers.js';

const probe = probeSandbox();
const DB = 'Open_vSwitch';

type Batch = { changes: RowChange<Bridge>[]; info: ChangeInfo };
const batches =
  (replica: Replica<OpenVSwitchTables>): ((listener: (b: Batch) => void) => () => void) =>
  (listener) =>
    replica.on('change', (changes, info) => listener({ changes: changes as RowChange<Bridge>[], info }));

/**
 * Many bridges with big maps, in several transactions, then one small one: ovsdb-server trims its
 * transaction history to fewer atoms than the database holds, so the database must be large
 * next to the transactions a client resumes across.
 */
async function populate(ovs: OvsSandbox, bridges: number): Promise<void> {
  for (let first = 0; first < bridges; first += 10) {
    const args: string[] = ['--no-wait'];
    for (let i = first; i < Math.min(bridges, first + 10); i++)
      args.push(
        '--',
        'add-br',
        `pop${i}`,
        '--',
        'set',
        'Bridge',
        `pop${i}`,
        ...Array.from({ length: 10 }, (_, k) => `external_ids:k${k}=v${k}`),
      );
    await vsctl(ovs, ...args);
  }
  await vsctl(ovs, '--no-wait', 'br-set-external-id', 'pop0', 'small', 'txn');
}

describeIf(probe.ovsdb, 'Replica', () => {
  let ovs: OvsSandbox;
  let client: OvsdbClient;

  beforeAll(async () => {
    ovs = await startOvs();
    client = await OvsdbClient.connect({ address: ovs.address, reconnect: { minBackoffMs: 20 } });
  });
  afterAll(async () => {
    await client?.close();
    await ovs?.stop();
  });

  it('is built from the initial rows and kept current, with change events and lookups', async () => {
    await vsctl(ovs, '--no-wait', 'add-br', 'r0', '--', 'add-port', 'r0', 'r0p1');
    const replica = await client.database<OpenVSwitchTables>(DB).replica({
      Bridge: { columns: ['name', 'ports', 'external_ids'] },
      Port: { columns: ['name', 'tag'] },
    });
    expect(replica.monitor.method).toBe('monitor_cond_since');
    const r0 = replica.lookup('Bridge', 'name', 'r0')!;
    expect(r0.ports.map((uuid) => replica.get('Port', uuid)?.name).sort()).toEqual(['r0', 'r0p1']);
    expect(replica.lookup('Port', 'name', 'r0p1')?.tag).toBeNull();

    const update = nextEvent(batches(replica), (b) => b.changes.some((c) => c.kind === 'update'));
    await vsctl(
      ovs,
      '--no-wait',
      'set',
      'Port',
      'r0p1',
      'tag=42',
      '--',
      'br-set-external-id',
      'r0',
      'owner',
      'me',
    );
    const { changes } = await update;
    const bridge = changes.find((c) => c.table === 'Bridge')!;
    expect(bridge.old?.external_ids).toEqual(new Map());
    expect(bridge.new?.external_ids).toEqual(new Map([['owner', 'me']]));
    expect(changes.find((c) => c.table === 'Port')).toMatchObject({
      kind: 'update',
      old: { tag: null },
      new: { tag: 42 },
    });
    expect(replica.lookup('Port', 'name', 'r0p1')?.tag).toBe(42);

    await vsctl(ovs, '--no-wait', 'del-port', 'r0', 'r0p1');
    await replica.sync();
    expect(replica.lookup('Port', 'name', 'r0p1')).toBeUndefined();
    expect(replica.lookup('Bridge', 'name', 'r0')?.ports).toHaveLength(1);

    // waitFor re-checks on every change, with a deadline.
    const created = replica.waitFor(() => replica.lookup('Bridge', 'name', 'r1'), { what: 'bridge r1' });
    await vsctl(ovs, '--no-wait', 'add-br', 'r1');
    expect((await created).name).toBe('r1');
    await expect(
      replica.waitFor(() => replica.lookup('Bridge', 'name', 'never'), { timeoutMs: 50 }),
    ).rejects.toMatchObject({
      code: 'OPDBUS_ERR_OVSDB_TIMEOUT',
    });
    await replica.close();
    await vsctl(ovs, '--no-wait', 'del-br', 'r0', '--', 'del-br', 'r1');
  });

  it('after a dropped connection it resynchronises and reports only what changed meanwhile (standalone: full resend)', async () => {
    await vsctl(ovs, '--no-wait', 'add-br', 's0', '--', 'add-br', 's1');
    const replica = await client
      .database<OpenVSwitchTables>(DB)
      .replica({ Bridge: { columns: ['name', 'external_ids'] } });
    // Change the database while the client is disconnected (the handler runs before any reconnect).
    const off = client.on('disconnect', () => {
      vsctlSync(
        ovs,
        '--no-wait',
        'br-set-external-id',
        's1',
        'while',
        'away',
        '--',
        'del-br',
        's0',
        '--',
        'add-br',
        's2',
      );
    });
    const resync = nextEvent(batches(replica), (b) => b.info.cause === 'resync');
    await serverCtl(ovs, 'ovsdb-server/reconnect');
    const { changes, info } = await resync;
    off();
    // A standalone database keeps no transaction history: the monitor could not resume.
    expect(info).toEqual({ cause: 'resync', resumed: false });
    expect(changes.map((c) => `${c.kind} ${(c.new ?? c.old)!.name}`).sort()).toEqual([
      'delete s0',
      'insert s2',
      'update s1',
    ]);
    expect(replica.lookup('Bridge', 'name', 's1')?.external_ids.get('while')).toBe('away');
    await replica.close();
    await vsctl(ovs, '--no-wait', 'del-br', 's1', '--', 'del-br', 's2');
  });
});

describeIf(
  probe.ovsdb,
  'Replica on a clustered database: monitor_cond_since resumes after a reconnect',
  () => {
    let ovs: OvsSandbox;
    let client: OvsdbClient;

    beforeAll(async () => {
      ovs = await startOvs({ clustered: true });
      await populate(ovs, 40);
      client = await OvsdbClient.connect({ address: ovs.address, reconnect: { minBackoffMs: 20 } });
    });
    afterAll(async () => {
      await client?.close();
      await ovs?.stop();
    });

    it('the connection is killed (not the server); only the transactions since the last id are sent', async () => {
      const replica = await client
        .database<OpenVSwitchTables>(DB)
        .replica({ Bridge: { columns: ['name', 'external_ids'] } });
      expect(replica.monitor.method).toBe('monitor_cond_since');
      expect(replica.table('Bridge').size).toBe(40);
      const before = replica.lastTxnId;
      expect(before).toMatch(/^[0-9a-f-]{36}$/);
      expect(before).not.toBe('00000000-0000-0000-0000-000000000000');

      const seen: Batch[] = [];
      replica.on('change', (changes, info) => seen.push({ changes: changes as RowChange<Bridge>[], info }));
      const off = client.on('disconnect', () => {
        vsctlSync(ovs, '--no-wait', 'br-set-external-id', 'pop7', 'resumed', 'yes');
      });
      const resync = nextEvent(batches(replica), (b) => b.info.cause === 'resync');
      await serverCtl(ovs, 'ovsdb-server/reconnect');
      const { changes, info } = await resync;
      off();
      expect(info).toEqual({ cause: 'resync', resumed: true });
      expect(changes).toHaveLength(1);
      expect(changes[0]).toMatchObject({ table: 'Bridge', kind: 'update', new: { name: 'pop7' } });
      expect(replica.lookup('Bridge', 'name', 'pop7')?.external_ids.get('resumed')).toBe('yes');
      expect(replica.lastTxnId).not.toBe(before);
      // Only that one change came through the resync: no full resend of the 40 bridges.
      expect(seen.flatMap((b) => b.changes)).toHaveLength(1);

      // And it keeps following updates afterwards.
      const next = nextEvent(batches(replica), (b) => b.changes.some((c) => c.new?.name === 'pop8'));
      await vsctl(ovs, '--no-wait', 'br-set-external-id', 'pop8', 'after', 'yes');
      await next;
      await replica.close();
    });
  },
);

describeIf(probe.ovsdb, 'Replica when the server refuses monitor_cond (fallback to monitor)', () => {
  let ovs: OvsSandbox;
  let client: OvsdbClient;

  beforeAll(async () => {
    ovs = await startOvs();
    // ovsdb-server answers "unknown method" to monitor_cond and monitor_cond_since from now on.
    await serverCtl(ovs, 'ovsdb-server/disable-monitor-cond');
    client = await OvsdbClient.connect(ovs.address);
  });
  afterAll(async () => {
    await client?.close();
    await ovs?.stop();
  });

  it('falls back to monitor and applies the conditions itself: rows enter and leave the view', async () => {
    await vsctl(
      ovs,
      '--no-wait',
      'add-br',
      'f0',
      '--',
      'add-br',
      'f1',
      '--',
      'br-set-external-id',
      'f1',
      'team',
      'red',
    );
    const replica = await client.database<OpenVSwitchTables>(DB).replica({
      Bridge: { columns: ['name'], where: [['external_ids', 'includes', { team: 'red' }]] },
    });
    expect(replica.monitor.method).toBe('monitor');
    expect(replica.rows('Bridge').map((b) => b.name)).toEqual(['f1']);

    const entered = nextEvent(batches(replica), (b) => b.changes.some((c) => c.kind === 'insert'));
    await vsctl(ovs, '--no-wait', 'br-set-external-id', 'f0', 'team', 'red');
    expect((await entered).changes.map((c) => c.new?.name)).toEqual(['f0']);

    const left = nextEvent(batches(replica), (b) => b.changes.some((c) => c.kind === 'delete'));
    await vsctl(ovs, '--no-wait', 'br-set-external-id', 'f1', 'team', 'blue');
    expect((await left).changes.map((c) => c.old?.name)).toEqual(['f1']);
    expect(replica.rows('Bridge').map((b) => b.name)).toEqual(['f0']);
    await replica.close();
  });
});
