import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { OpdbusError } from '@opdbus/core';
import { formatOvsdbAddress, type OvsdbAddress } from './address.js';

/** TLS settings for `ssl:` addresses (node:tls options: key, cert, ca, servername, …). */
export type OvsdbTlsOptions = Omit<ConnectionOptions, 'host' | 'port' | 'path' | 'socket'>;

const hints: Record<string, string> = {
  ENOENT: 'there is no socket at that path; is ovsdb-server running, and is this its --remote=punix: path?',
  ECONNREFUSED: 'nothing listens there; is ovsdb-server running with that remote?',
  EACCES: 'permission denied; run as root or as a user allowed to open the socket',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'the host is unreachable',
  ENOTSOCK: 'the path is not a socket',
};

/** Open the byte stream to an OVSDB server. Throws `OPDBUS_ERR_OVSDB_CONNECT`. */
export function openSocket(
  address: OvsdbAddress,
  options: { tls?: OvsdbTlsOptions; timeoutMs: number },
): Promise<Socket> {
  const text = formatOvsdbAddress(address);
  return new Promise<Socket>((resolve, reject) => {
    let socket: Socket;
    const readyEvent = address.kind === 'ssl' ? 'secureConnect' : 'connect';
    if (address.kind === 'unix') socket = netConnect({ path: address.path });
    else if (address.kind === 'tcp') socket = netConnect({ host: address.host, port: address.port });
    else socket = tlsConnect({ ...options.tls, host: address.host, port: address.port });
    const timer = setTimeout(() => {
      socket.destroy();
      fail(Object.assign(new Error(`no connection within ${options.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, options.timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.removeListener(readyEvent, ready);
      const errno = (err as NodeJS.ErrnoException).code;
      const hint = errno === undefined ? undefined : hints[errno];
      reject(
        new OpdbusError(
          'OPDBUS_ERR_OVSDB_CONNECT',
          `Cannot connect to OVSDB at ${text}: ${err.message}${hint === undefined ? '' : ` (${hint})`}.`,
          {
            data: {
              address: text,
              ...(errno === undefined ? {} : { errno }),
              ...((err as NodeJS.ErrnoException).errno === undefined
                ? {}
                : { errnoNumber: Math.abs((err as NodeJS.ErrnoException).errno!) }),
            },
            cause: err,
          },
        ),
      );
    };
    const ready = (): void => {
      clearTimeout(timer);
      socket.removeListener('error', fail);
      if (address.kind !== 'unix') socket.setNoDelay(true);
      resolve(socket);
    };
    socket.once(readyEvent, ready);
    socket.once('error', fail);
  });
}
