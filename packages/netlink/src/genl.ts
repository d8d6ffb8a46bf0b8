import { OpdbusError, isOpdbusError, type Logger } from '@opdbus/core';
import type { AttributeSet } from './codec.js';
import { NLMSG_HDRLEN, StructDef, defineAttributes } from './codec.js';
import { CTRL_CMD, GENL_ID_CTRL, NETLINK } from './constants.js';
import { NetlinkConnection, type NetnsTarget } from './socket.js';

/** struct genlmsghdr. */
export const genlmsghdr = new StructDef('genlmsghdr', [
  ['command', 'u8'],
  ['version', 'u8'],
  ['reserved', 'pad16'],
]);

const opAttrs = defineAttributes('ctrl_op', {
  id: { type: 1, kind: 'u32' },
  flags: { type: 2, kind: 'u32' },
});
const mcastAttrs = defineAttributes('ctrl_mcast_group', {
  name: { type: 1, kind: 'string' },
  id: { type: 2, kind: 'u32' },
});

/** The controller's attributes (CTRL_ATTR_*). */
export const ctrlAttrs: AttributeSet = defineAttributes('ctrl', {
  id: { type: 1, kind: 'u16' },
  name: { type: 2, kind: 'string' },
  version: { type: 3, kind: 'u32' },
  headerSize: { type: 4, kind: 'u32' },
  maxAttribute: { type: 5, kind: 'u32' },
  operations: { type: 6, kind: 'array', item: { kind: 'nested', set: () => opAttrs } },
  multicastGroups: { type: 7, kind: 'array', item: { kind: 'nested', set: () => mcastAttrs } },
});

/** A generic netlink family, as the controller describes it. */
export interface GenlFamily {
  /** The message type to address it with. */
  id: number;
  name: string;
  version: number;
  /** Size of the family's own header after genlmsghdr. */
  headerSize: number;
  maxAttribute: number;
  /** Commands it implements (`flags`: GENL_ADMIN_PERM 1, CMD_CAP_DO 2, CMD_CAP_DUMP 4 ...). */
  operations: { id: number; flags: number }[];
  /** Multicast groups (join with NETLINK_ADD_MEMBERSHIP on `id`). */
  multicastGroups: { name: string; id: number }[];
}

/** A reply of a generic netlink request: the command, version and decoded attributes. */
export interface GenlMessage<T> {
  command: number;
  version: number;
  data: T;
}

/** Options of {@link GenericNetlink.request}. */
export interface GenlRequestOptions {
  /** How to encode `data` and decode replies. Without it replies decode to `{}`. */
  attributes?: AttributeSet;
  /** The request's attributes. */
  data?: Readonly<Record<string, unknown>>;
  /** A dump (NLM_F_DUMP). */
  dump?: boolean;
  /** genlmsghdr.version (default: the family's). */
  version?: number;
  /** Extra nlmsg flags. */
  flags?: number;
  /** What is asked, for error messages (default `FAMILY command N`). */
  description?: string;
}

/** Options of {@link GenericNetlink.open}. */
export interface GenericNetlinkOptions {
  netns?: NetnsTarget;
  receiveBufferSize?: number;
  logger?: Logger;
}

const ENOENT = 2;

/**
 * A generic netlink client: resolves families by name (CTRL_CMD_GETFAMILY, cached) and sends
 * typed requests whose attributes are encoded and decoded with an {@link AttributeSet}.
 *
 * @example
 * ```ts
 * using genl = GenericNetlink.open();
 * const ethtool = await genl.family('ethtool');
 * console.log(ethtool.id, ethtool.operations.length);
 * ```
 */
export class GenericNetlink implements Disposable {
  readonly #conn: NetlinkConnection;
  readonly #families = new Map<string, Promise<GenlFamily>>();

  private constructor(conn: NetlinkConnection) {
    this.#conn = conn;
  }

  /** Open a client, with its socket created inside `options.netns` when given. */
  static open(options: GenericNetlinkOptions = {}): GenericNetlink {
    return new GenericNetlink(
      new NetlinkConnection(NETLINK.GENERIC, {
        netns: options.netns,
        ...(options.receiveBufferSize === undefined ? {} : { receiveBufferSize: options.receiveBufferSize }),
        ...(options.logger === undefined ? {} : { logger: options.logger }),
      }),
    );
  }

  /** The namespace the client acts in (undefined: the caller's). */
  get netns(): string | undefined {
    return this.#conn.netns;
  }

  /** Resolve a family by name; `OPDBUS_ERR_GENL_FAMILY` when the kernel does not have it. */
  family(name: string): Promise<GenlFamily> {
    let found = this.#families.get(name);
    if (found === undefined) {
      found = this.#getFamily(name);
      this.#families.set(name, found);
      found.catch(() => this.#families.delete(name));
    }
    return found;
  }

  async #getFamily(name: string): Promise<GenlFamily> {
    try {
      const [family] = await this.#ctrl(false, { name }, `resolve generic netlink family "${name}"`);
      if (family === undefined) throw new Error('no reply');
      return family;
    } catch (err) {
      if (isOpdbusError(err, 'OPDBUS_ERR_NETLINK_REQUEST') && err.data?.errnoNumber === ENOENT) {
        throw new OpdbusError(
          'OPDBUS_ERR_GENL_FAMILY',
          `The generic netlink family "${name}" is not available in this kernel${this.netns ? ` (namespace "${this.netns}")` : ''}; load the module that provides it.`,
          { data: { family: name, errno: 'ENOENT', errnoNumber: ENOENT }, cause: err },
        );
      }
      throw err;
    }
  }

  /** Every family the kernel knows. */
  families(): Promise<GenlFamily[]> {
    return this.#ctrl(true, {}, 'list generic netlink families');
  }

  #ctrl(dump: boolean, data: Record<string, unknown>, description: string): Promise<GenlFamily[]> {
    return this.#conn.request<GenlFamily>({
      type: GENL_ID_CTRL,
      dump,
      body: (w) => {
        genlmsghdr.encode({ command: CTRL_CMD.GETFAMILY, version: 1 }, w);
        ctrlAttrs.encode(data, w);
      },
      decode: (buf, off, len) => {
        const o = ctrlAttrs.decode(buf, off + NLMSG_HDRLEN + genlmsghdr.size, off + len, {});
        return {
          id: (o.id as number | undefined) ?? 0,
          name: (o.name as string | undefined) ?? '',
          version: (o.version as number | undefined) ?? 0,
          headerSize: (o.headerSize as number | undefined) ?? 0,
          maxAttribute: (o.maxAttribute as number | undefined) ?? 0,
          operations: ((o.operations as { id: number; flags: number }[] | undefined) ?? []).map((op) => ({
            id: op.id,
            flags: op.flags ?? 0,
          })),
          multicastGroups: (o.multicastGroups as { name: string; id: number }[] | undefined) ?? [],
        };
      },
      request: 'CTRL_CMD_GETFAMILY',
      description,
    });
  }

  /**
   * Send `command` to a family (by name or resolved) and decode the replies with
   * `options.attributes`. Resolves with every reply (a dump's messages, or a do-request's reply).
   */
  async request<T = Record<string, unknown>>(
    family: string | GenlFamily,
    command: number,
    options: GenlRequestOptions = {},
  ): Promise<GenlMessage<T>[]> {
    const fam = typeof family === 'string' ? await this.family(family) : family;
    const set = options.attributes;
    const skip = genlmsghdr.size + ((fam.headerSize + 3) & ~3);
    return this.#conn.request<GenlMessage<T>>({
      type: fam.id,
      dump: options.dump === true,
      flags: options.flags ?? 0,
      body: (w) => {
        genlmsghdr.encode({ command, version: options.version ?? fam.version }, w);
        if (fam.headerSize > 0) {
          w.ensure(fam.headerSize);
          w.buf.fill(0, w.pos, w.pos + fam.headerSize);
          w.pos += fam.headerSize;
          w.align();
        }
        if (options.data !== undefined) {
          if (set === undefined)
            throw new TypeError('GenericNetlink.request: `data` needs `attributes` to encode it');
          set.encode(options.data, w);
        }
      },
      decode: (buf, off, len) => {
        const h = genlmsghdr.decode(buf, off + NLMSG_HDRLEN);
        const data = set === undefined ? {} : set.decode(buf, off + NLMSG_HDRLEN + skip, off + len, {});
        return { command: h.command as number, version: h.version as number, data: data as T };
      },
      request: `${fam.name} command ${command}`,
      description: options.description ?? `${fam.name} command ${command}${options.dump ? ' (dump)' : ''}`,
    });
  }

  /** Close the socket. */
  close(): void {
    this.#conn.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
