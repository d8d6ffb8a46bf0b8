/**
 * The WireGuard cross-platform userspace configuration protocol (UAPI,
 * https://www.wireguard.com/xplatform/), spoken by wireguard-go, boringtun and the other
 * userspace implementations over `/var/run/wireguard/IFNAME.sock`.
 *
 * A request is `get=1\n\n` or `set=1\n` followed by `key=value` lines and an empty line; the
 * answer ends with `errno=N\n\n` (0 on success, a negative errno otherwise). Keys are hex. A
 * `public_key` line starts a peer: the lines after it apply to that peer.
 */
import { connect, type Socket } from 'node:net';
import { OpdbusError } from '@opdbus/core';
import { errnoInfo } from '@opdbus/netlink';
import {
  canonicalAllowedIp,
  canonicalEndpoint,
  type DeviceState,
  type DeviceUpdate,
  type PeerState,
} from './device.js';
import { isZeroKey, publicKeyOf } from './keys.js';

/** Where userspace implementations put their UAPI sockets. */
export const UAPI_SOCKET_DIR = '/var/run/wireguard';

const hex = (key: Uint8Array): string => Buffer.from(key).toString('hex');

/** The `set=1` request for an update (with the terminating empty line). */
export function formatSetRequest(update: DeviceUpdate): string {
  const lines = ['set=1'];
  if (update.privateKey !== undefined)
    lines.push(`private_key=${update.privateKey === null ? '0'.repeat(64) : hex(update.privateKey)}`);
  if (update.listenPort !== undefined) lines.push(`listen_port=${update.listenPort}`);
  if (update.fwmark !== undefined) lines.push(`fwmark=${update.fwmark}`);
  if (update.replacePeers === true) lines.push('replace_peers=true');
  for (const peer of update.peers ?? []) {
    lines.push(`public_key=${hex(peer.publicKey)}`);
    if (peer.remove === true) {
      lines.push('remove=true');
      continue;
    }
    if (peer.updateOnly === true) lines.push('update_only=true');
    if (peer.presharedKey !== undefined)
      lines.push(`preshared_key=${peer.presharedKey === null ? '0'.repeat(64) : hex(peer.presharedKey)}`);
    if (peer.endpoint !== undefined) lines.push(`endpoint=${canonicalEndpoint(peer.endpoint)}`);
    if (peer.persistentKeepalive !== undefined)
      lines.push(`persistent_keepalive_interval=${peer.persistentKeepalive}`);
    if (peer.replaceAllowedIPs === true) lines.push('replace_allowed_ips=true');
    for (const ip of peer.allowedIPs ?? []) lines.push(`allowed_ip=${canonicalAllowedIp(ip)}`);
  }
  return `${lines.join('\n')}\n\n`;
}

function protocolError(message: string, data: Record<string, unknown> = {}): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_WIREGUARD_DEVICE', message, { data });
}

function keyValue(value: string, line: string): Buffer {
  if (!/^[0-9a-f]{64}$/i.test(value))
    throw protocolError(`The UAPI answer has a malformed key line "${line}".`);
  return Buffer.from(value, 'hex');
}

function uint(value: string, line: string): number {
  if (!/^\d+$/.test(value)) throw protocolError(`The UAPI answer has a malformed number in "${line}".`);
  return Number(value);
}

/**
 * Parse the answer to `get=1` (the lines before `errno=0`) into a device. Unknown keys are
 * skipped (implementations add their own, e.g. amnezia's `jc`); the public key is derived from
 * the private key.
 */
export function parseGetResponse(name: string, text: string): DeviceState {
  const device: DeviceState = { name, listenPort: 0, fwmark: 0, peers: [] };
  let peer: PeerState | undefined;
  let handshakeSec = 0;
  let handshakeNsec = 0;
  const finishPeer = (): void => {
    if (peer !== undefined) peer.lastHandshakeMs = handshakeSec * 1000 + Math.floor(handshakeNsec / 1e6);
    handshakeSec = 0;
    handshakeNsec = 0;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw protocolError(`The UAPI answer has a line without "=": "${line}".`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'errno') {
      const errno = Number(value);
      if (errno !== 0) throw uapiErrno(errno, 'get', name);
      continue;
    }
    if (key === 'public_key') {
      finishPeer();
      peer = {
        publicKey: keyValue(value, line),
        persistentKeepalive: 0,
        allowedIPs: [],
        lastHandshakeMs: 0,
        rxBytes: 0n,
        txBytes: 0n,
      };
      device.peers.push(peer);
      continue;
    }
    if (peer === undefined) {
      switch (key) {
        case 'private_key': {
          const k = keyValue(value, line);
          if (!isZeroKey(k)) {
            device.privateKey = k;
            device.publicKey = publicKeyOf(k);
          }
          break;
        }
        case 'listen_port':
          device.listenPort = uint(value, line);
          break;
        case 'fwmark':
          device.fwmark = uint(value, line);
          break;
        default:
          break;
      }
      continue;
    }
    switch (key) {
      case 'preshared_key': {
        const k = keyValue(value, line);
        if (!isZeroKey(k)) peer.presharedKey = k;
        break;
      }
      case 'endpoint':
        peer.endpoint = canonicalEndpoint(value);
        break;
      case 'persistent_keepalive_interval':
        peer.persistentKeepalive = uint(value, line);
        break;
      case 'allowed_ip':
        peer.allowedIPs.push(canonicalAllowedIp(value));
        break;
      case 'last_handshake_time_sec':
        handshakeSec = uint(value, line);
        break;
      case 'last_handshake_time_nsec':
        handshakeNsec = uint(value, line);
        break;
      case 'rx_bytes':
        peer.rxBytes = BigInt(uint(value, line));
        break;
      case 'tx_bytes':
        peer.txBytes = BigInt(uint(value, line));
        break;
      default:
        break;
    }
  }
  finishPeer();
  return device;
}

/** A UAPI `errno=N` answer (N is a negative errno) as an error that keeps the errno. */
export function uapiErrno(errno: number, op: 'get' | 'set', name: string): OpdbusError {
  const number = Math.abs(errno);
  const info = errnoInfo(number);
  const hint =
    info.name === 'EADDRINUSE'
      ? ': the listen port is taken by another socket'
      : info.name === 'EINVAL'
        ? ': the device refused a value (see its log)'
        : '';
  return new OpdbusError(
    'OPDBUS_ERR_WIREGUARD_DEVICE',
    `WireGuard device ${name} answered the UAPI ${op} request with errno=${errno} (${info.name || 'unknown'}${info.message ? `, ${info.message}` : ''})${hint}.`,
    { data: { interface: name, op, errno: info.name || String(errno), errnoNumber: number } },
  );
}

/** Options of {@link UapiClient}. */
export interface UapiClientOptions {
  /** The socket directory (default {@link UAPI_SOCKET_DIR}). */
  socketDir?: string;
  /** How long one request may take (default 10 s). */
  timeoutMs?: number;
}

/**
 * A client of one device's UAPI socket. Each request opens its own connection, so a device
 * that answers an error (and stops reading the request) never poisons the next one.
 */
export class UapiClient {
  readonly name: string;
  readonly path: string;
  readonly #timeoutMs: number;

  constructor(name: string, options: UapiClientOptions = {}) {
    this.name = name;
    this.path = `${options.socketDir ?? UAPI_SOCKET_DIR}/${name}.sock`;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** The device's configuration and peer state. */
  async get(): Promise<DeviceState> {
    const answer = await this.#request('get=1\n\n', 'get');
    return parseGetResponse(this.name, answer);
  }

  /** Apply an update; resolves once the device answered errno=0. */
  async set(update: DeviceUpdate): Promise<void> {
    const answer = await this.#request(formatSetRequest(update), 'set');
    const m = /(?:^|\n)errno=(-?\d+)\n/.exec(answer);
    if (m === null)
      throw protocolError(`WireGuard device ${this.name} sent no errno line for a set request.`);
    if (Number(m[1]) !== 0) throw uapiErrno(Number(m[1]), 'set', this.name);
  }

  #request(text: string, op: 'get' | 'set'): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket: Socket = connect(this.path);
      const chunks: Buffer[] = [];
      let settled = false;
      const finish = (err: Error | undefined, value?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (err !== undefined) reject(err);
        else resolve(value!);
      };
      const timer = setTimeout(
        () =>
          finish(
            protocolError(
              `WireGuard device ${this.name} did not answer a UAPI ${op} request within ${this.#timeoutMs} ms (${this.path}).`,
              {
                interface: this.name,
              },
            ),
          ),
        this.#timeoutMs,
      );
      socket.on('error', (err: NodeJS.ErrnoException) =>
        finish(
          new OpdbusError(
            'OPDBUS_ERR_WIREGUARD_DEVICE',
            err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
              ? `WireGuard device ${this.name} has no userspace implementation listening on ${this.path} (${err.code}); the interface is gone or is not a wireguard-go device.`
              : `Cannot talk to WireGuard device ${this.name} over ${this.path}: ${err.message}.`,
            { data: { interface: this.name, errno: err.code ?? 'EIO' }, cause: err },
          ),
        ),
      );
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        const text = Buffer.concat(chunks).toString('utf8');
        // The answer ends with "errno=N\n\n".
        if (/(?:^|\n)errno=-?\d+\n\n$/.test(text)) finish(undefined, text);
      });
      socket.on('end', () =>
        finish(
          protocolError(`WireGuard device ${this.name} closed the UAPI socket before answering (${op}).`, {
            interface: this.name,
          }),
        ),
      );
      socket.write(text);
    });
  }
}
