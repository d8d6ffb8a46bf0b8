import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { OpdbusError } from '@opdbus/core';

/** Where the API listens: a unix socket or a TCP address. */
export type Listener =
  { kind: 'unix'; path: string; label: string } | { kind: 'tcp'; host: string; port: number; label: string };

/** Whether a host is a loopback address (or `localhost`). */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '[::1]';
}

/** Parse `unix:PATH` or `tcp:HOST:PORT` (`tcp:[::1]:8080` for IPv6). */
export function parseListener(spec: string): Listener {
  if (spec.startsWith('unix:')) {
    const path = spec.slice(5);
    if (path === '') throw usage(spec);
    return { kind: 'unix', path: resolve(path), label: resolve(path) };
  }
  if (spec.startsWith('tcp:')) {
    const m = /^tcp:(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(spec);
    const port = Number(m?.[2]);
    if (m === null || port < 1 || port > 65_535) throw usage(spec);
    const host = m[1]!.replace(/^\[|\]$/g, '');
    return { kind: 'tcp', host, port, label: `${m[1]}:${port}` };
  }
  throw usage(spec);
}

function usage(spec: string): OpdbusError {
  return new OpdbusError(
    'OPDBUS_ERR_USAGE',
    `--listen "${spec}": write unix:PATH or tcp:HOST:PORT (e.g. unix:/run/opdbus/api.sock, tcp:127.0.0.1:9180).`,
    { data: { listen: spec } },
  );
}

/**
 * Refuse what would expose the API: any TCP listener without a token file, and a non-loopback one
 * without TLS as well.
 */
export function checkListeners(
  listeners: readonly Listener[],
  security: { tokens: boolean; tls: boolean },
): void {
  for (const l of listeners) {
    if (l.kind !== 'tcp') continue;
    if (!security.tokens) {
      throw new OpdbusError(
        'OPDBUS_ERR_USAGE',
        `--listen tcp:${l.label}: a TCP listener needs --token-file (bearer tokens); use a unix socket for local access without tokens.`,
        { data: { listen: l.label } },
      );
    }
    if (!isLoopback(l.host) && !security.tls) {
      throw new OpdbusError(
        'OPDBUS_ERR_USAGE',
        `--listen tcp:${l.label}: a non-loopback address needs TLS (--tls-cert and --tls-key) as well as --token-file.`,
        { data: { listen: l.label } },
      );
    }
  }
}
