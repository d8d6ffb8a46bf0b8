import type { Logger } from '@opdbus/core';
import { DgramSocket } from 'node-unix-socket';
import type { Daemon } from './daemon.js';

/** What the notifier reads from the daemon. */
export type NotifySource = Pick<Daemon, 'describe' | 'events'>;

/** What the daemon tells its service manager (sd_notify). */
export interface Notifier {
  /** Whether `$NOTIFY_SOCKET` is set (the daemon runs under a service manager that listens). */
  readonly active: boolean;
  /** Start WATCHDOG=1 pings (every half `$WATCHDOG_USEC`) and STATUS= lines; returns the function that stops them. */
  start(source: NotifySource): () => void;
  /** READY=1 (after the first comparison), with a STATUS= line. */
  ready(source: NotifySource): void;
  /** A STATUS= line. */
  status(text: string): void;
  /** STOPPING=1. */
  stopping(): void;
}

/** The STATUS= line for the daemon's state, e.g. `watching; 0 drifted, 0 on hold`. */
export function statusLine(source: Pick<Daemon, 'describe'>): string {
  const d = source.describe();
  return `${d.status}${d.detail === undefined ? '' : ` (${d.detail})`}; ${d.drift} drifted, ${d.holds} on hold`;
}

/**
 * The sd_notify protocol without libsystemd: datagrams of `KEY=VALUE` lines to the unix datagram
 * socket `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket), sent with node-unix-socket
 * because Node's dgram module has no unix datagram sockets. The watchdog pings come from the event
 * loop, so a daemon whose loop is stuck stops pinging and systemd restarts it (`WatchdogSec=`).
 * Without `$NOTIFY_SOCKET` every call does nothing.
 */
export function systemdNotifier(logger: Logger, env: NodeJS.ProcessEnv = process.env): Notifier {
  const target = env.NOTIFY_SOCKET;
  if (target === undefined || target === '') {
    return {
      active: false,
      start: () => () => undefined,
      ready: () => undefined,
      status: () => undefined,
      stopping: () => undefined,
    };
  }
  const path = target.startsWith('@') ? `\0${target.slice(1)}` : target;
  let socket: DgramSocket | undefined;
  let failed = false;
  const send = (message: string): void => {
    try {
      socket ??= new DgramSocket();
      const buf = Buffer.from(message, 'utf8');
      socket.sendTo(buf, 0, buf.length, path, (err) => {
        if (err !== undefined && !failed) {
          failed = true;
          logger.warn({ err, notifySocket: target }, 'cannot notify the service manager');
        }
      });
    } catch (err) {
      if (!failed) {
        failed = true;
        logger.warn({ err, notifySocket: target }, 'cannot notify the service manager');
      }
    }
  };
  const usec = Number(env.WATCHDOG_USEC);
  const watchdogPid = env.WATCHDOG_PID === undefined ? process.pid : Number(env.WATCHDOG_PID);
  const watchdogMs =
    Number.isFinite(usec) && usec > 0 && watchdogPid === process.pid ? usec / 2000 : undefined;
  return {
    active: true,
    start(source) {
      const timer = watchdogMs === undefined ? undefined : setInterval(() => send('WATCHDOG=1'), watchdogMs);
      let last = '';
      const stop = source.events.on((event) => {
        if (
          event.type !== 'status' &&
          event.type !== 'drift' &&
          event.type !== 'drift.resolved' &&
          event.type !== 'hold'
        )
          return;
        const line = statusLine(source);
        if (line === last) return;
        last = line;
        send(`STATUS=${line}`);
      });
      return () => {
        clearInterval(timer);
        stop();
      };
    },
    ready(source) {
      send(`READY=1\nSTATUS=${statusLine(source)}\nMAINPID=${process.pid}`);
    },
    status(text) {
      send(`STATUS=${text}`);
    },
    stopping() {
      send('STOPPING=1');
      socket?.close();
      socket = undefined;
    },
  };
}
