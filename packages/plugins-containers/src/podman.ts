/**
 * Podman containers through Podman's REST API (the libpod endpoints, `/v4.0.0/libpod/…`) on its
 * unix socket: list, inspect, create (from an image Podman has), start, stop, remove. No
 * `podman` process is run.
 */
import { request } from 'node:http';
import { OpdbusError } from '@opdbus/core';
import type { MachineLimits, PodmanContainer } from './schema.js';

/** The libpod API version the requests name (Podman 4.0 and later answer it). */
const API = '/v4.0.0/libpod';
/** The label on containers this plugin created. */
export const PODMAN_LABEL = 'io.opdbus.managed';
/** CFS period the plugin sets with a CPU quota (systemd's too: 100 ms). */
const CPU_PERIOD_US = 100_000;

interface Reply {
  status: number;
  body: unknown;
}

function sizeOf(v: number | string): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+)([KMGT]?)$/.exec(v)!;
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf(m[2] || ' ');
}

/** A client of one Podman service socket. */
export class PodmanClient {
  readonly socketPath: string;
  readonly #timeoutMs: number;

  constructor(socketPath: string, timeoutMs = 120_000) {
    this.socketPath = socketPath;
    this.#timeoutMs = timeoutMs;
  }

  #request(method: string, path: string, body?: unknown): Promise<Reply> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath,
          method,
          path: `${API}${path}`,
          headers: {
            host: 'podman',
            ...(payload === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': payload.length }),
          },
          timeout: this.#timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text === '' ? null : JSON.parse(text);
            } catch {
              // Plain text (e.g. _ping's "OK").
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** A request whose status must be one of `ok`; anything else is OPDBUS_ERR_CONTAINERS_PODMAN. */
  async #call(what: string, method: string, path: string, ok: number[], body?: unknown): Promise<Reply> {
    let reply: Reply;
    try {
      reply = await this.#request(method, path, body);
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_CONTAINERS_PODMAN',
        `Podman's API at ${this.socketPath} could not be reached to ${what}: ${(err as Error).message}. Is \`podman system service\` (podman.socket) running?`,
        { data: { socket: this.socketPath }, cause: err },
      );
    }
    if (!ok.includes(reply.status)) {
      const said = (reply.body as { message?: unknown } | null)?.message;
      const message = typeof said === 'string' ? said : JSON.stringify(reply.body);
      throw new OpdbusError(
        'OPDBUS_ERR_CONTAINERS_PODMAN',
        `Podman refused to ${what} (HTTP ${reply.status}): ${message}`,
        { data: { socket: this.socketPath, status: reply.status, podmanMessage: message } },
      );
    }
    return reply;
  }

  /** The service's version, or why it cannot be reached. */
  async version(): Promise<string> {
    await this.#call('answer a ping', 'GET', '/_ping', [200]);
    const { body } = await this.#call('say its version', 'GET', '/version', [200]);
    const version = (body as { Version?: unknown } | null)?.Version;
    return typeof version === 'string' ? version : 'unknown';
  }

  /** Every container's name. */
  async names(): Promise<string[]> {
    const { body } = await this.#call('list containers', 'GET', '/containers/json?all=true', [200]);
    return (body as { Names: string[] }[]).flatMap((c) => c.Names.slice(0, 1)).sort();
  }

  /** A container as the document writes it, or null when there is none by that name. */
  async inspect(name: string): Promise<PodmanContainer | null> {
    const { status, body } = await this.#call(
      `inspect container ${name}`,
      'GET',
      `/containers/${encodeURIComponent(name)}/json`,
      [200, 404],
    );
    if (status === 404) return null;
    const c = body as {
      State: { Status: string };
      ImageName: string;
      Config: { Cmd: string[] | null };
      HostConfig: {
        Memory: number;
        CpuQuota: number;
        CpuPeriod: number;
        PidsLimit: number;
        NetworkMode: string;
      };
    };
    const out: PodmanContainer = {
      name,
      state: c.State.Status === 'running' || c.State.Status === 'paused' ? 'running' : 'stopped',
      image: c.ImageName,
    };
    if (c.Config.Cmd !== null && c.Config.Cmd.length > 0) out.command = c.Config.Cmd;
    const mode = c.HostConfig.NetworkMode;
    if (mode === 'none' || mode === 'host' || mode === 'bridge') out.network = mode;
    const limits: MachineLimits = {};
    if (c.HostConfig.CpuQuota > 0 && c.HostConfig.CpuPeriod > 0)
      limits.cpuQuota = Math.round((c.HostConfig.CpuQuota / c.HostConfig.CpuPeriod) * 100 * 100) / 100;
    if (c.HostConfig.Memory > 0) limits.memoryMax = c.HostConfig.Memory;
    if (c.HostConfig.PidsLimit > 0) limits.tasksMax = c.HostConfig.PidsLimit;
    if (Object.keys(limits).length > 0) out.limits = limits;
    return out;
  }

  /** Create a container (not started). */
  async create(c: PodmanContainer): Promise<void> {
    const limits: Record<string, unknown> = {};
    if (c.limits?.memoryMax !== undefined) limits.memory = { limit: sizeOf(c.limits.memoryMax) };
    if (c.limits?.cpuQuota !== undefined)
      limits.cpu = { quota: Math.round((c.limits.cpuQuota / 100) * CPU_PERIOD_US), period: CPU_PERIOD_US };
    if (c.limits?.tasksMax !== undefined) limits.pids = { limit: c.limits.tasksMax };
    await this.#call(`create container ${c.name} from ${c.image}`, 'POST', '/containers/create', [201], {
      name: c.name,
      image: c.image,
      ...(c.command === undefined ? {} : { command: c.command }),
      ...(c.network === undefined ? {} : { netns: { nsmode: c.network } }),
      labels: { [PODMAN_LABEL]: 'containers' },
      ...(Object.keys(limits).length === 0 ? {} : { resource_limits: limits }),
    });
  }

  async start(name: string): Promise<void> {
    await this.#call(
      `start container ${name}`,
      'POST',
      `/containers/${encodeURIComponent(name)}/start`,
      [204, 304],
    );
  }

  /** Stop: SIGTERM, then SIGKILL after `timeoutS` seconds. */
  async stop(name: string, timeoutS = 10): Promise<void> {
    await this.#call(
      `stop container ${name}`,
      'POST',
      `/containers/${encodeURIComponent(name)}/stop?timeout=${timeoutS}`,
      [204, 304],
    );
  }

  /**
   * Follow container events (`/events?stream=true`, newline-delimited JSON) until the returned
   * function is called. `onError` hears of a stream that broke.
   */
  async events(
    onEvent: (event: { action: string; name: string; raw: Record<string, unknown> }) => void,
    onError: (err: Error) => void,
  ): Promise<() => void> {
    await this.version();
    const filters = encodeURIComponent(JSON.stringify({ type: ['container'] }));
    let closed = false;
    const req = request(
      {
        socketPath: this.socketPath,
        method: 'GET',
        path: `${API}/events?stream=true&filters=${filters}`,
        headers: { host: 'podman' },
      },
      (res) => {
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          // Bounded: one event is small; a line that never ends is not an event stream.
          if (buffer.length > 1_000_000) {
            req.destroy(new Error('the events stream sent a line longer than 1 MB'));
            return;
          }
          let nl: number;
          while ((nl = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, nl).trim();
            buffer = buffer.slice(nl + 1);
            if (line === '') continue;
            try {
              const e = JSON.parse(line) as { Action?: unknown; Actor?: { Attributes?: { name?: unknown } } };
              const name = e.Actor?.Attributes?.name;
              if (typeof e.Action === 'string' && typeof name === 'string')
                onEvent({ action: e.Action, name, raw: e });
            } catch (err) {
              onError(new Error(`Podman sent an event that is not JSON: ${(err as Error).message}`));
            }
          }
        });
        res.on('end', () => {
          if (!closed) onError(new Error(`Podman's event stream at ${this.socketPath} ended`));
        });
      },
    );
    req.on('error', (err) => {
      if (!closed) onError(err);
    });
    req.end();
    return () => {
      closed = true;
      req.destroy();
    };
  }

  /** Remove a container (stopping it first, SIGKILL after `timeoutS`) and its anonymous volumes. */
  async remove(name: string, timeoutS = 10): Promise<void> {
    await this.#call(
      `remove container ${name}`,
      'DELETE',
      `/containers/${encodeURIComponent(name)}?force=true&v=true&timeout=${timeoutS}`,
      [200, 204, 404],
    );
  }
}
