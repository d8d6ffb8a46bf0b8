import { OpdbusError } from '@opdbus/core';

/** The IANA port of OVSDB, used when an address names none. */
export const OVSDB_DEFAULT_PORT = 6640;

/** A parsed OVSDB address (the syntax of ovs-vsctl's `--db`). */
export type OvsdbAddress =
  { kind: 'unix'; path: string } | { kind: 'tcp' | 'ssl'; host: string; port: number };

/**
 * Parse an OVSDB address: `unix:PATH`, `tcp:HOST[:PORT]` or `ssl:HOST[:PORT]`, with IPv6 hosts
 * in brackets (`tcp:[::1]:6640`). Throws `OPDBUS_ERR_OVSDB_ADDRESS` saying what is wrong.
 */
export function parseOvsdbAddress(address: string): OvsdbAddress {
  const colon = address.indexOf(':');
  const scheme = colon < 0 ? '' : address.slice(0, colon);
  const rest = colon < 0 ? '' : address.slice(colon + 1);
  const fail = (why: string): never => {
    throw new OpdbusError(
      'OPDBUS_ERR_OVSDB_ADDRESS',
      `Invalid OVSDB address ${JSON.stringify(address)}: ${why}; use unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT (e.g. unix:/run/openvswitch/db.sock).`,
      { data: { address } },
    );
  };
  switch (scheme) {
    case 'unix':
      if (rest === '') fail('the socket path is empty');
      return { kind: 'unix', path: rest };
    case 'tcp':
    case 'ssl': {
      let host: string;
      let portText: string | undefined;
      if (rest.startsWith('[')) {
        const end = rest.indexOf(']');
        if (end < 0) fail('an IPv6 host must be closed with "]"');
        host = rest.slice(1, end);
        const after = rest.slice(end + 1);
        if (after !== '' && !after.startsWith(':'))
          fail(`unexpected ${JSON.stringify(after)} after the host`);
        portText = after === '' ? undefined : after.slice(1);
      } else {
        const parts = rest.split(':');
        if (parts.length > 2) fail('write an IPv6 host in brackets, e.g. tcp:[::1]:6640');
        host = parts[0] ?? '';
        portText = parts[1];
      }
      if (host === '') fail('the host is empty');
      let port = OVSDB_DEFAULT_PORT;
      if (portText !== undefined) {
        port = Number(portText);
        if (!/^\d+$/.test(portText) || port < 1 || port > 65535)
          fail(`port ${JSON.stringify(portText)} is not 1-65535`);
      }
      return { kind: scheme, host, port };
    }
    case 'punix':
    case 'ptcp':
    case 'pssl':
      return fail(
        `"${scheme}:" is a passive (listening) address for servers; a client connects with "${scheme.slice(1)}:"`,
      );
    default:
      return fail(scheme === '' ? 'it has no scheme' : `unknown scheme "${scheme}:"`);
  }
}

/** Format a parsed address back to its text form. */
export function formatOvsdbAddress(address: OvsdbAddress): string {
  if (address.kind === 'unix') return `unix:${address.path}`;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${address.kind}:${host}:${address.port}`;
}
