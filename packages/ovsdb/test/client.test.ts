// The client against a real ovsdb-server (Debian's Open_vSwitch schema), cross-checked with
// ovs-vsctl: every RFC 7047 method and operation, cancel, errors, keepalive and reconnect.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { OpdbusError } from '@opdbus/core';
import { probeSandbox, startOvs, type OvsSandbox } from '@opdbus/sandbox';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OvsdbClient } from '../src/client.js';
import type { Database } from '../src/database.js';
import type { UpdateBatch } from '../src/monitor.js';
import type { OpenVSwitchTables } from '../src/schemas/openVSwitch.js';
import { describeIf, nextEvent, serverCtl, vsctl } from './helpers.js';
import { itIf, requirement } from '@opdbus/sandbox/testing';

const run = promisify(execFile);
const probe = probeSandbox();
const DB = 'Open_vSwitch';
const distIndex = fileURLToPath(new URL('../dist/index.js', import.meta.url));

function errorOf(promise: Promise<unknown>): Promise<OpdbusError> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => {
      expect(err).toBeInstanceOf(OpdbusError);
      return err as OpdbusError;
    },
  );
}

describeIf(probe.ovsdb, 'OvsdbClient against ovsdb-server', () => {
  let ovs: OvsSandbox;
  let client: OvsdbClient;
  let vs: Database<OpenVSwitchTables>;
  let rootUuid: string;

  beforeAll(async () => {
    ovs = await startOvs();
    client = await OvsdbClient.connect({ address: ovs.address });
    vs = client.database<OpenVSwitchTables>(DB);
    const [{ rows }] = await client.transact(DB, [
      { op: 'select', table: 'Open_vSwitch', where: [], columns: ['_uuid'] },
    ]);
    rootUuid = rows[0]!._uuid as string;
  });
  afterAll(async () => {
    await client?.close();
    await ovs?.stop();
  });

  it('list_dbs, get_schema and echo', async () => {
    expect(await client.listDbs()).toEqual(expect.arrayContaining(['Open_vSwitch', '_Server']));
    const schema = await client.getSchema(DB);
    const { stdout } = await run('ovsdb-client', ['get-schema-version', ovs.address, DB]);
    expect(schema.version).toBe(stdout.trim());
    expect(schema.table('Bridge').indexes).toEqual([['name']]);
    expect(await client.echo('hello', 42, { nested: [true] })).toEqual(['hello', 42, { nested: [true] }]);
    const err = await errorOf(client.getSchema('Nope'));
    expect(err.code).toBe('OPDBUS_ERR_OVSDB_RPC');
    expect(err.data).toMatchObject({ method: 'get_schema', error: 'unknown database' });
  });

  it('an unknown method is refused with OVSDB’s own error string', async () => {
    const err = await errorOf(client.request('no_such_method', []));
    expect(err.code).toBe('OPDBUS_ERR_OVSDB_RPC');
    expect(err.data?.error).toBe('unknown method');
  });

  it('insert (with named uuids), select, update, mutate, delete — seen the same way by ovs-vsctl', async () => {
    const [bridge, iface, port, , selected] = await vs.transact([
      {
        op: 'insert',
        table: 'Bridge',
        uuidName: 'br',
        row: { name: 'tbr0', ports: ['p'], external_ids: { owner: 'test' } },
      },
      { op: 'insert', table: 'Interface', uuidName: 'i', row: { name: 'tport0', type: 'internal' } },
      { op: 'insert', table: 'Port', uuidName: 'p', row: { name: 'tport0', interfaces: ['i'], tag: 7 } },
      { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'insert', ['br']]] },
      {
        op: 'select',
        table: 'Bridge',
        where: [['name', '==', 'tbr0']],
        columns: ['_uuid', 'name', 'ports', 'external_ids'],
      },
    ]);
    expect(selected.rows).toEqual([
      { _uuid: bridge.uuid, name: 'tbr0', ports: [port.uuid], external_ids: new Map([['owner', 'test']]) },
    ]);
    expect(iface.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(await vsctl(ovs, 'list-ports', 'tbr0')).toBe('tport0');
    expect(await vsctl(ovs, 'get', 'Port', 'tport0', 'tag')).toBe('7');
    expect(await vsctl(ovs, 'get', 'Interface', 'tport0', 'type')).toBe('internal');

    const [updated] = await vs.transact([
      {
        op: 'update',
        table: 'Bridge',
        where: [['name', '==', 'tbr0']],
        row: { fail_mode: 'secure', stp_enable: true },
      },
    ]);
    expect(updated).toEqual({ count: 1 });
    expect(await vsctl(ovs, 'get', 'Bridge', 'tbr0', 'fail_mode')).toBe('secure');
    expect(await vsctl(ovs, 'get', 'Bridge', 'tbr0', 'stp_enable')).toBe('true');

    const [mutated] = await vs.transact([
      {
        op: 'mutate',
        table: 'Port',
        where: [['name', '==', 'tport0']],
        mutations: [
          ['tag', '+=', 3],
          ['trunks', 'insert', [10, 20, 30]],
          [
            'external_ids',
            'insert',
            new Map([
              ['a', '1'],
              ['b', '2'],
            ]),
          ],
        ],
      },
      {
        op: 'mutate',
        table: 'Port',
        where: [['name', '==', 'tport0']],
        mutations: [
          ['trunks', 'delete', [20]],
          ['external_ids', 'delete', ['a']],
        ],
      },
    ]);
    expect(mutated).toEqual({ count: 1 });
    expect(await vsctl(ovs, 'get', 'Port', 'tport0', 'tag')).toBe('10');
    expect(await vsctl(ovs, 'get', 'Port', 'tport0', 'trunks')).toBe('[10, 30]');
    expect(await vsctl(ovs, 'get', 'Port', 'tport0', 'external_ids')).toBe('{b="2"}');

    // delete: a Bridge is referenced by Open_vSwitch.bridges, so it goes in two steps of one transaction.
    const refused = await errorOf(
      client.transact(DB, [{ op: 'delete', table: 'Bridge', where: [['name', '==', 'tbr0']] }]),
    );
    expect(refused.code).toBe('OPDBUS_ERR_OVSDB_TRANSACTION');
    expect(refused.data).toMatchObject({ error: 'referential integrity violation', operationIndex: 1 });
    const [, deleted] = await client.transact(DB, [
      { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'delete', [bridge.uuid]]] },
      { op: 'delete', table: 'Bridge', where: [['_uuid', '==', bridge.uuid]] },
    ]);
    expect(deleted).toEqual({ count: 1 });
    expect(await vsctl(ovs, 'list-br')).toBe('');
    // The port and interface were garbage-collected with the bridge (non-root tables).
    expect(await vsctl(ovs, '--columns=name', 'list', 'Port')).toBe('');
  });

  it('wait: passes when the rows are as stated, fails with "timed out" when they are not', async () => {
    await vsctl(ovs, '--no-wait', 'add-br', 'wbr0', '--', 'set', 'Bridge', 'wbr0', 'fail_mode=standalone');
    const [ok] = await vs.transact([
      {
        op: 'wait',
        table: 'Bridge',
        where: [['name', '==', 'wbr0']],
        columns: ['fail_mode'],
        until: '==',
        rows: [{ fail_mode: 'standalone' }],
        timeout: 0,
      },
    ]);
    expect(ok).toEqual({});
    const err = await errorOf(
      vs.transact([
        { op: 'comment', comment: 'guarded' },
        {
          op: 'wait',
          table: 'Bridge',
          where: [['name', '==', 'wbr0']],
          columns: ['fail_mode'],
          until: '==',
          rows: [{ fail_mode: 'secure' }],
          timeout: 0,
        },
        { op: 'update', table: 'Bridge', where: [['name', '==', 'wbr0']], row: { fail_mode: 'secure' } },
      ]),
    );
    expect(err.code).toBe('OPDBUS_ERR_OVSDB_TRANSACTION');
    expect(err.data).toMatchObject({
      error: 'timed out',
      operationIndex: 1,
      operation: 'wait',
      table: 'Bridge',
    });
    expect(err.message).toMatch(/failed at operation 1 \(wait Bridge\): timed out/);
    expect(await vsctl(ovs, 'get', 'Bridge', 'wbr0', 'fail_mode')).toBe('standalone');
    // until "!=": fails while the row is as stated.
    const ne = await errorOf(
      vs.transact([
        {
          op: 'wait',
          table: 'Bridge',
          where: [['name', '==', 'wbr0']],
          columns: ['name'],
          until: '!=',
          rows: [{ name: 'wbr0' }],
          timeout: 0,
        },
      ]),
    );
    expect(ne.data?.error).toBe('timed out');
    await vsctl(ovs, '--no-wait', 'del-br', 'wbr0');
  });

  it('commit, comment (logged with the transaction), abort and assert', async () => {
    const [, , committed] = await vs.transact([
      { op: 'comment', comment: 'opdbus test: commit durable' },
      {
        op: 'mutate',
        table: 'Open_vSwitch',
        where: [],
        mutations: [['external_ids', 'insert', { committed: 'yes' }]],
      },
      { op: 'commit', durable: true },
    ]);
    expect(committed).toEqual({});
    const { stdout } = await run('ovsdb-tool', ['-m', 'show-log', ovs.dbPath]);
    expect(stdout).toContain('opdbus test: commit durable');

    const aborted = await errorOf(
      vs.transact([
        {
          op: 'mutate',
          table: 'Open_vSwitch',
          where: [],
          mutations: [['external_ids', 'insert', { aborted: 'yes' }]],
        },
        { op: 'abort' },
      ]),
    );
    expect(aborted.data).toMatchObject({ error: 'aborted', operationIndex: 1, operation: 'abort' });
    expect(await vsctl(ovs, 'get', 'Open_vSwitch', '.', 'external_ids')).toBe('{committed=yes}');

    const notOwner = await errorOf(client.transact(DB, [{ op: 'assert', lock: 'opdbus_test_assert' }]));
    expect(notOwner.data).toMatchObject({ error: 'not owner', operationIndex: 0 });
    expect(await client.lock('opdbus_test_assert')).toBe(true);
    expect(client.hasLock('opdbus_test_assert')).toBe(true);
    expect(await client.transact(DB, [{ op: 'assert', lock: 'opdbus_test_assert' }])).toEqual([{}]);
    await client.unlock('opdbus_test_assert');
    expect(client.hasLock('opdbus_test_assert')).toBe(false);
  });

  it('constraint violations come back with the server’s error and details', async () => {
    await vsctl(ovs, '--no-wait', 'add-br', 'dup0');
    const err = await errorOf(
      vs.transact([
        { op: 'insert', table: 'Bridge', uuidName: 'b', row: { name: 'dup0' } },
        { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'insert', ['b']]] },
      ]),
    );
    expect(err.code).toBe('OPDBUS_ERR_OVSDB_TRANSACTION');
    expect(err.data?.error).toBe('constraint violation');
    expect(String(err.data?.details)).toContain('dup0');
    await vsctl(ovs, '--no-wait', 'del-br', 'dup0');
  });

  it('validates values against the schema before sending, naming table, column and value', async () => {
    const err = await errorOf(vs.transact([{ op: 'update', table: 'Port', where: [], row: { tag: 5000 } }]));
    expect(err.code).toBe('OPDBUS_ERR_OVSDB_VALUE');
    expect(err.message).toBe(
      'In operation 0 (update Port): Port.tag: 5000 is greater than 4095 (the column is optional integer 0..4095).',
    );
    expect(err.data).toMatchObject({ table: 'Port', column: 'tag', value: 5000, operationIndex: 0 });
    const vlan = await errorOf(
      client.transact(DB, [{ op: 'update', table: 'Port', where: [], row: { vlan_mode: 'sideways' } }]),
    );
    expect(vlan.message).toContain(
      'Port.vlan_mode: "sideways" is not one of "access", "dot1q-tunnel", "native-tagged", "native-untagged", "trunk"',
    );
    const lock = await errorOf(client.lock('not a lock name'));
    expect(lock.code).toBe('OPDBUS_ERR_OVSDB_VALUE');
  });

  it('cancel: aborting a blocked transaction cancels it on the server; nothing is committed', async () => {
    const controller = new AbortController();
    const pending = vs.transact(
      [
        {
          op: 'mutate',
          table: 'Open_vSwitch',
          where: [],
          mutations: [['external_ids', 'insert', { canceled: 'no' }]],
        },
        // Blocks until a bridge named never0 exists.
        {
          op: 'wait',
          table: 'Bridge',
          where: [['name', '==', 'never0']],
          columns: ['name'],
          until: '!=',
          rows: [],
        },
      ],
      { signal: controller.signal },
    );
    // The server holds the transaction: a barrier (echo) round trip proves it has read it.
    await client.echo();
    controller.abort();
    const err = await errorOf(pending);
    expect(err.code).toBe('OPDBUS_ERR_OVSDB_CANCELED');
    expect(await vsctl(ovs, 'get', 'Open_vSwitch', '.', 'external_ids')).not.toContain('canceled');
  });

  it('monitor, monitor_cond and monitor_cond_since: initial rows, insert, modify, delete; monitor_cancel', async () => {
    for (const method of ['monitor', 'monitor_cond', 'monitor_cond_since'] as const) {
      const bridge = `m${method.length}br`;
      await vsctl(ovs, '--no-wait', 'add-br', bridge);
      const batches: UpdateBatch[] = [];
      const monitor = await client.monitor<OpenVSwitchTables>(
        DB,
        { Bridge: { columns: ['name', 'external_ids'] } },
        { method, onUpdate: (b) => batches.push(b) },
      );
      expect(monitor.method).toBe(method);
      expect(batches[0]?.reset).toBe(true);
      expect(batches[0]?.updates).toEqual([
        {
          table: 'Bridge',
          uuid: expect.any(String),
          kind: 'initial',
          row: { _uuid: expect.any(String), name: bridge, external_ids: new Map() },
        },
      ]);
      const uuid = batches[0]!.updates[0]!.uuid;
      batches.length = 0;
      await vsctl(ovs, '--no-wait', 'br-set-external-id', bridge, 'k', 'v');
      await client.sync();
      expect(batches.map((b) => b.updates)).toEqual([
        [
          method === 'monitor'
            ? {
                table: 'Bridge',
                uuid,
                kind: 'replace',
                row: { _uuid: uuid, name: bridge, external_ids: new Map([['k', 'v']]) },
              }
            : { table: 'Bridge', uuid, kind: 'modify', diff: { external_ids: new Map([['k', 'v']]) } },
        ],
      ]);
      batches.length = 0;
      await vsctl(ovs, '--no-wait', 'add-br', `${bridge}x`);
      await vsctl(ovs, '--no-wait', 'del-br', bridge);
      await client.sync();
      const kinds = batches.flatMap((b) =>
        b.updates.map((u) => `${u.kind}:${u.uuid === uuid ? bridge : 'new'}`),
      );
      expect(kinds).toEqual(['insert:new', `delete:${bridge}`]);
      await monitor.cancel();
      batches.length = 0;
      await vsctl(ovs, '--no-wait', 'del-br', `${bridge}x`);
      await client.sync();
      expect(batches).toEqual([]);
      const again = await errorOf(client.request('monitor_cancel', [monitor.id]));
      expect(again.data?.error).toBe('unknown monitor');
    }
  });

  it('monitor_cond with conditions, changed with monitor_cond_change', async () => {
    await vsctl(
      ovs,
      '--no-wait',
      'add-br',
      'ca0',
      '--',
      'add-br',
      'cb0',
      '--',
      'set',
      'Bridge',
      'cb0',
      'external_ids:team=blue',
    );
    const batches: UpdateBatch[] = [];
    const monitor = await client.monitor<OpenVSwitchTables>(
      DB,
      { Bridge: { columns: ['name'], where: [['external_ids', 'includes', { team: 'blue' }]] } },
      { method: 'monitor_cond', onUpdate: (b) => batches.push(b) },
    );
    expect(batches[0]!.updates.map((u) => (u.kind === 'initial' ? u.row.name : u.kind))).toEqual(['cb0']);
    batches.length = 0;
    await vsctl(ovs, '--no-wait', 'br-set-external-id', 'ca0', 'team', 'blue');
    await client.sync();
    expect(batches.flatMap((b) => b.updates.map((u) => u.kind))).toEqual(['insert']);
    batches.length = 0;
    await monitor.change({ Bridge: { where: [['name', '==', 'ca0']] } });
    await client.sync();
    // cb0 leaves the view; ca0 stays.
    expect(batches.flatMap((b) => b.updates.map((u) => u.kind))).toEqual(['delete']);
    batches.length = 0;
    await vsctl(
      ovs,
      '--no-wait',
      'br-set-external-id',
      'cb0',
      'x',
      'y',
      '--',
      'br-set-external-id',
      'ca0',
      'x',
      'y',
    );
    await client.sync();
    expect(batches.flatMap((b) => b.updates.map((u) => u.kind))).toEqual(['modify']);
    await monitor.cancel();
    await vsctl(ovs, '--no-wait', 'del-br', 'ca0', '--', 'del-br', 'cb0');
  });

  it('lock contention between two clients: lock, locked, steal, stolen, unlock', async () => {
    await using a = await OvsdbClient.connect(ovs.address);
    await using b = await OvsdbClient.connect(ovs.address);
    expect(await a.lock('opdbus_contended')).toBe(true);
    expect(await b.lock('opdbus_contended')).toBe(false);
    expect(b.locks.get('opdbus_contended')).toBe('waiting');
    // B cannot assert a lock it waits for.
    expect((await errorOf(b.transact(DB, [{ op: 'assert', lock: 'opdbus_contended' }]))).data?.error).toBe(
      'not owner',
    );
    // A releases: the server grants the lock to B with a "locked" notification.
    const granted = nextEvent<string>(
      (l) => b.on('locked', l),
      (lock) => lock === 'opdbus_contended',
    );
    await a.unlock('opdbus_contended');
    await granted;
    expect(b.hasLock('opdbus_contended')).toBe(true);
    // A steals it back: B is told with "stolen".
    const stolen = nextEvent<string>(
      (l) => b.on('stolen', l),
      (lock) => lock === 'opdbus_contended',
    );
    await a.steal('opdbus_contended');
    await stolen;
    expect(a.hasLock('opdbus_contended')).toBe(true);
    expect(b.hasLock('opdbus_contended')).toBe(false);
    expect(await a.transact(DB, [{ op: 'assert', lock: 'opdbus_contended' }])).toEqual([{}]);
    // acquireLock gives up cleanly.
    const timeout = await errorOf(b.acquireLock('opdbus_contended', { timeoutMs: 100 }));
    expect(timeout.code).toBe('OPDBUS_ERR_OVSDB_TIMEOUT');
    const waiting = b.acquireLock('opdbus_contended', { timeoutMs: 10_000 });
    await a.unlock('opdbus_contended');
    await waiting;
    expect(b.hasLock('opdbus_contended')).toBe(true);
  });

  it('reconnects after the server drops the connection; requests in flight fail, later ones work', async () => {
    await using c = await OvsdbClient.connect({ address: ovs.address, reconnect: { minBackoffMs: 20 } });
    expect(await c.lock('opdbus_reconnect')).toBe(true);
    // errorOf() at once: the rejection comes before the test awaits it.
    const blocked = errorOf(
      c.database<OpenVSwitchTables>(DB).transact([
        {
          op: 'wait',
          table: 'Bridge',
          where: [['name', '==', 'never1']],
          columns: ['name'],
          until: '!=',
          rows: [],
        },
      ]),
    );
    await c.echo();
    const disconnected = nextEvent<Error>((l) => c.on('disconnect', l));
    const reconnected = nextEvent<number>((l) => c.on('reconnect', l));
    await serverCtl(ovs, 'ovsdb-server/reconnect');
    await disconnected;
    const err = await blocked;
    expect(err.code).toBe('OPDBUS_ERR_OVSDB_DISCONNECTED');
    expect(err.message).toContain('the transaction may or may not have committed');
    await reconnected;
    expect(c.state).toBe('connected');
    expect(await c.listDbs()).toContain(DB);
    // The lock was asked for again on the new connection.
    expect(c.hasLock('opdbus_reconnect')).toBe(true);
  });

  it('keepalive: a server that stops answering is detected by the echo probe, and reconnected when back', async () => {
    await using c = await OvsdbClient.connect({
      address: ovs.address,
      probeIntervalMs: 250,
      reconnect: { minBackoffMs: 20, maxBackoffMs: 100 },
    });
    // Idle for several intervals: the server answers the probes, the connection stays.
    let drops = 0;
    c.on('disconnect', () => drops++);
    let probes = 0;
    await nextEvent<number>(
      (l) => c.on('probe', l),
      () => ++probes === 3,
      10_000,
      'three answered probes',
    );
    expect(drops).toBe(0);
    const dead = nextEvent<Error>(
      (l) => c.on('disconnect', l),
      () => true,
      10_000,
      'the probe to fail',
    );
    process.kill(ovs.ovsdbServerPid, 'SIGSTOP');
    let reason: Error;
    try {
      reason = await dead;
    } finally {
      process.kill(ovs.ovsdbServerPid, 'SIGCONT');
    }
    expect((reason.cause as OpdbusError).code).toBe('OPDBUS_ERR_OVSDB_TIMEOUT');
    await nextEvent<number>(
      (l) => c.on('reconnect', l),
      () => true,
      10_000,
      'the reconnect',
    );
    expect(await c.echo('back')).toEqual(['back']);
  });

  it('closing rejects what is pending, and later requests', async () => {
    const c = await OvsdbClient.connect(ovs.address);
    const blocked = errorOf(
      c.database<OpenVSwitchTables>(DB).transact([
        {
          op: 'wait',
          table: 'Bridge',
          where: [['name', '==', 'never2']],
          columns: ['name'],
          until: '!=',
          rows: [],
        },
      ]),
    );
    await c.echo();
    await c.close();
    expect((await blocked).code).toBe('OPDBUS_ERR_OVSDB_CLOSED');
    expect((await errorOf(c.listDbs())).code).toBe('OPDBUS_ERR_OVSDB_CLOSED');
    expect(rootUuid).toMatch(/^[0-9a-f-]{36}$/);
  });

  itIf(
    requirement('build', existsSync(distIndex), `${distIndex} is missing; run pnpm build first`),
    'unrefWhenIdle: an idle client does not hold the process; awaited work and close() still finish',
    async () => {
      // A separate Node process (the built package): it must run to the end on its own.
      const script = [
        `import { OvsdbClient } from ${JSON.stringify(distIndex)};`,
        'const c = await OvsdbClient.connect({ address: process.argv[1], unrefWhenIdle: true });',
        "console.log((await c.listDbs()).includes('Open_vSwitch'));",
        'if (process.argv[2] === "close") { await c.close(); console.log("closed"); }',
      ].join('\n');
      const closing = await run(process.execPath, [
        '--input-type=module',
        '-e',
        script,
        ovs.address,
        'close',
      ]);
      expect(closing.stdout).toBe('true\nclosed\n');
      // Without close(), the process exits by itself once nothing is pending.
      const idle = await run(process.execPath, ['--input-type=module', '-e', script, ovs.address, 'keep'], {
        timeout: 20_000,
      });
      expect(idle.stdout).toBe('true\n');
    },
  );

  it('connection errors say where and why', async () => {
    const err = await errorOf(OvsdbClient.connect(`unix:${ovs.dir}/nope.sock`));
    expect(err.code).toBe('OPDBUS_ERR_OVSDB_CONNECT');
    expect(err.message).toContain(`Cannot connect to OVSDB at unix:${ovs.dir}/nope.sock`);
    expect(err.message).toContain('is ovsdb-server running');
    expect(err.data).toMatchObject({ errno: 'ENOENT' });
  });
});
