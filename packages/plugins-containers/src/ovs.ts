/**
 * A machine's veth host end as a port of an Open vSwitch bridge, over OVSDB (RFC 7047) at the
 * target's `ovsdbAddress`: the port and its interface carry `external_ids:opdbus-machine=NAME`,
 * as libvirt marks the ports of its guests. ovs-vswitchd opens the device whenever the machine
 * (re)creates it; the port stays in the database while the machine is stopped.
 */
import { OpdbusError, type PluginContext } from '@opdbus/core';
import { OvsdbClient } from '@opdbus/ovsdb';

/** Where OVSDB is when the target names no `ovsdbAddress` (as the ovs plugin). */
export const DEFAULT_OVSDB_ADDRESS = 'unix:/run/openvswitch/db.sock';
/** The external id that marks a port as a machine's. */
export const MACHINE_EXTERNAL_ID = 'opdbus-machine';
const DB = 'Open_vSwitch';

type Uuid = string;
interface BridgeRow {
  _uuid: Uuid;
  name: string;
  ports: Uuid[];
}

const asList = (v: unknown): Uuid[] =>
  Array.isArray(v) ? (v as Uuid[]) : v === null || v === undefined ? [] : [v as Uuid];

/** One OVSDB connection for port lookups and changes. */
export class OvsPorts implements AsyncDisposable {
  readonly address: string;
  readonly #client: OvsdbClient;

  private constructor(address: string, client: OvsdbClient) {
    this.address = address;
    this.#client = client;
  }

  /** Connect to the target's OVSDB; a clear error when it cannot be reached. */
  static async open(ctx: PluginContext): Promise<OvsPorts> {
    const address = ctx.target.ovsdbAddress ?? DEFAULT_OVSDB_ADDRESS;
    try {
      return new OvsPorts(address, await OvsdbClient.connect({ address, logger: ctx.logger }));
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_CONTAINERS_MACHINE',
        `A machine's network is an Open vSwitch bridge, but OVSDB at ${address} cannot be reached: ${(err as Error).message}. Start ovsdb-server and ovs-vswitchd, or pass the target's OVSDB address (--ovsdb).`,
        { data: { address }, cause: err },
      );
    }
  }

  async #bridges(): Promise<BridgeRow[]> {
    const [result] = await this.#client.transact(DB, [
      { op: 'select', table: 'Bridge', where: [], columns: ['_uuid', 'name', 'ports'] },
    ]);
    return (result as { rows: Record<string, unknown>[] }).rows.map((r) => ({
      _uuid: r._uuid as Uuid,
      name: r.name as string,
      ports: asList(r.ports),
    }));
  }

  async #port(name: string): Promise<Uuid | undefined> {
    const [result] = await this.#client.transact(DB, [
      { op: 'select', table: 'Port', where: [['name', '==', name]], columns: ['_uuid'] },
    ]);
    return (result as { rows: { _uuid: Uuid }[] }).rows[0]?._uuid;
  }

  /** The bridge the port `name` is on, or null. */
  async bridgeOf(name: string): Promise<string | null> {
    const uuid = await this.#port(name);
    if (uuid === undefined) return null;
    return (await this.#bridges()).find((b) => b.ports.includes(uuid))?.name ?? null;
  }

  /** Make `port` (one system interface of the same name) a port of `bridge`, off any other bridge. */
  async attach(bridge: string, port: string, machine: string): Promise<void> {
    const bridges = await this.#bridges();
    const target = bridges.find((b) => b.name === bridge);
    if (target === undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_CONTAINERS_INVALID',
        `Machine ${machine} is to be attached to Open vSwitch bridge ${bridge}, which OVSDB at ${this.address} does not have; declare it in the ovs section of the same document (bridges: - name: ${bridge}).`,
        { data: { machine, bridge, address: this.address } },
      );
    }
    const uuid = await this.#port(port);
    if (uuid !== undefined && target.ports.includes(uuid)) return;
    const ops: unknown[] = [];
    if (uuid !== undefined)
      for (const b of bridges.filter((b) => b.ports.includes(uuid)))
        ops.push({
          op: 'mutate',
          table: 'Bridge',
          where: [['_uuid', '==', b._uuid]],
          mutations: [['ports', 'delete', [uuid]]],
        });
    const ids = { [MACHINE_EXTERNAL_ID]: machine };
    ops.push(
      { op: 'insert', table: 'Interface', uuidName: 'iface', row: { name: port, external_ids: ids } },
      {
        op: 'insert',
        table: 'Port',
        uuidName: 'port',
        row: { name: port, interfaces: ['iface'], external_ids: ids },
      },
      {
        op: 'mutate',
        table: 'Bridge',
        where: [['_uuid', '==', target._uuid]],
        mutations: [['ports', 'insert', ['port']]],
      },
    );
    await this.#transact(ops, `attach ${port} of machine ${machine} to bridge ${bridge}`);
  }

  /** Take the port `name` off every bridge (OVSDB then drops the port and its interface). */
  async detach(port: string, machine: string): Promise<void> {
    const uuid = await this.#port(port);
    if (uuid === undefined) return;
    const ops = (await this.#bridges())
      .filter((b) => b.ports.includes(uuid))
      .map((b) => ({
        op: 'mutate',
        table: 'Bridge',
        where: [['_uuid', '==', b._uuid]],
        mutations: [['ports', 'delete', [uuid]]],
      }));
    if (ops.length > 0) await this.#transact(ops, `detach ${port} of machine ${machine}`);
  }

  async #transact(ops: unknown[], what: string): Promise<void> {
    try {
      await this.#client.transact(DB, ops as never);
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_CONTAINERS_MACHINE',
        `OVSDB at ${this.address} refused to ${what}: ${(err as Error).message}`,
        { data: { address: this.address }, cause: err },
      );
    }
  }

  async close(): Promise<void> {
    await this.#client.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
