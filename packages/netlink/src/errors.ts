import { getSystemErrorMap } from 'node:util';
import { OpdbusError, defineErrorCodes } from '@opdbus/core';
import { native } from './native.js';

/**
 * The error codes of @opdbus/netlink, thrown as `OpdbusError` (namespaces throw core's
 * `OPDBUS_ERR_NETNS`). A kernel refusal keeps its errno identity in `data`: `errno` (the name,
 * e.g. `EEXIST`), `errnoNumber` (17), `request` (e.g. `RTM_NEWLINK`), `description` (what was
 * asked, e.g. `create link br0 (bridge)`) and, when the kernel said more, `extack`.
 */
export const netlinkErrors = defineErrorCodes({
  OPDBUS_ERR_NETLINK_REQUEST: {
    summary:
      'The kernel refused a netlink request (create a link, add an address or a route ...); the errno and the kernel message say why.',
    remedy:
      'Read the errno and the request in the message: EEXIST means it already exists, ENODEV a named link does not exist, EOPNOTSUPP the kernel lacks the link kind, EPERM needs root.',
  },
  OPDBUS_ERR_NETLINK_SOCKET: {
    summary: 'A netlink socket could not be opened, configured, written or read.',
    remedy: 'Read the errno in the message; netlink sockets need Linux, and most changes need root.',
  },
  OPDBUS_ERR_NETLINK_PROTOCOL: {
    summary: 'The kernel sent a netlink message that could not be parsed (truncated or malformed).',
    remedy: 'Report it with the kernel version; it is a bug in the parser or an unusual kernel.',
  },
  OPDBUS_ERR_NETLINK_INVALID: {
    summary:
      'An argument to the netlink client is not valid (an IP address, a prefix, a MAC address, a link name).',
    remedy: 'Correct the value named in the message.',
  },
  OPDBUS_ERR_NETLINK_CLOSED: {
    summary: 'A netlink client or monitor was used after it was closed.',
    remedy: 'Open a new one.',
  },
  OPDBUS_ERR_NETLINK_OVERRUN: {
    summary:
      'The kernel dropped netlink replies because the socket receive buffer overflowed (ENOBUFS); the outcome of the affected requests is unknown.',
    remedy: 'Query the state again; send fewer requests at once or use a larger receiveBufferSize.',
  },
  OPDBUS_ERR_GENL_FAMILY: {
    summary: 'A generic netlink family is not available in this kernel (its module is not loaded).',
    remedy:
      'Load the kernel module that provides the family (e.g. `modprobe wireguard`), or use a kernel that has it.',
  },
});

/** An error code of @opdbus/netlink. */
export type NetlinkErrorCode = keyof typeof netlinkErrors;

let errnoTable: Map<number, [string, string]> | undefined;

/**
 * The errno name and description of an errno number, as glibc names them (`17` →
 * `{ name: 'EEXIST', message: 'File exists' }`; 95 is `EOPNOTSUPP`). Falls back to Node's table
 * when the native addon is not built.
 */
export function errnoInfo(errno: number): { name: string; message: string } {
  const n = Math.abs(errno);
  try {
    const [name, message] = native().strerror(n);
    if (name !== '') return { name, message };
  } catch {
    // The addon is not built: use libuv's names below.
  }
  errnoTable ??= getSystemErrorMap();
  const entry = errnoTable.get(-n);
  return entry === undefined
    ? { name: `E${n}`, message: `error ${n}` }
    : { name: entry[0], message: entry[1] };
}

/** What a failed request was, for the error message. */
export interface RequestIdentity {
  /** The message type, e.g. `RTM_NEWLINK`. */
  request: string;
  /** What was asked, e.g. `create link br0 (bridge)`. */
  description: string;
  /** The namespace the socket acts in, when not the caller's. */
  netns?: string | undefined;
}

/** The error for a kernel refusal (NLMSG_ERROR with a negative error). */
export function requestError(identity: RequestIdentity, errno: number, extack?: string): OpdbusError {
  const { name, message } = errnoInfo(errno);
  const where = identity.netns === undefined ? '' : ` in network namespace "${identity.netns}"`;
  return new OpdbusError(
    'OPDBUS_ERR_NETLINK_REQUEST',
    `${identity.request} (${identity.description})${where} failed: ${name} (${Math.abs(errno)}): ${message}${extack ? `; the kernel says: ${extack}` : ''}.`,
    {
      data: {
        request: identity.request,
        description: identity.description,
        errno: name,
        errnoNumber: Math.abs(errno),
        ...(extack ? { extack } : {}),
        ...(identity.netns === undefined ? {} : { netns: identity.netns }),
      },
    },
  );
}

/** The error for a failed system call on a netlink socket (the native error carries `code`/`errno`). */
export function socketError(what: string, err: unknown, netns?: string): OpdbusError {
  const e = err as NodeJS.ErrnoException;
  const errno = typeof e.errno === 'number' ? Math.abs(e.errno) : 0;
  const name = e.code ?? (errno ? errnoInfo(errno).name : 'EUNKNOWN');
  return new OpdbusError(
    'OPDBUS_ERR_NETLINK_SOCKET',
    `${what}${netns === undefined ? '' : ` in network namespace "${netns}"`} failed: ${e.message ?? String(err)}.`,
    {
      data: { errno: name, errnoNumber: errno, ...(netns === undefined ? {} : { netns }) },
      cause: err,
    },
  );
}

/** The error for an invalid argument. */
export function invalid(message: string, data: Record<string, unknown> = {}): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_NETLINK_INVALID', message, { data });
}
