import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBus, silentLogger } from '@opdbus/core';
import { DgramSocket } from 'node-unix-socket';
import { afterEach, describe, expect, it } from 'vitest';
import type { DaemonEvent } from './daemon.js';
import { systemdNotifier, type NotifySource } from './notify.js';

let dir: string | undefined;
afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A service manager's end of the protocol: a unix datagram socket collecting messages. */
function manager(): { path: string; messages: string[]; next: () => Promise<string>; close: () => void } {
  dir = mkdtempSync(join(tmpdir(), 'opdbusd-notify-'));
  const path = join(dir, 'notify');
  const socket = new DgramSocket();
  socket.bind(path);
  const messages: string[] = [];
  const waiters: ((m: string) => void)[] = [];
  socket.on('data', (buf: Buffer) => {
    const text = buf.toString('utf8');
    messages.push(text);
    waiters.shift()?.(text);
  });
  return {
    path,
    messages,
    next: () => new Promise((resolve) => waiters.push(resolve)),
    close: () => socket.close(),
  };
}

describe('sd_notify', () => {
  it('sends READY=1 with a STATUS= line, STATUS= on changes, WATCHDOG=1 pings and STOPPING=1', async () => {
    const m = manager();
    let status = 'starting';
    const events = new EventBus<DaemonEvent>();
    const source: NotifySource = {
      events,
      describe: () => ({ status: status as 'watching', drift: 0, holds: 0 }),
    };
    const notifier = systemdNotifier(silentLogger, {
      NOTIFY_SOCKET: m.path,
      WATCHDOG_USEC: '20000',
      WATCHDOG_PID: String(process.pid),
    });
    expect(notifier.active).toBe(true);
    const stop = notifier.start(source);
    expect(await m.next()).toBe('WATCHDOG=1');
    status = 'watching';
    const ready = m.next();
    notifier.ready(source);
    expect(await ready).toMatch(/^READY=1\nSTATUS=watching; 0 drifted, 0 on hold\nMAINPID=\d+$/);
    status = 'target-gone';
    const changed = new Promise<string>((resolve) => {
      const wait = (): void =>
        void m.next().then((msg) => (msg.startsWith('STATUS=') ? resolve(msg) : wait()));
      wait();
    });
    events.publish({ type: 'status', at: new Date().toISOString(), status: 'target-gone' });
    expect(await changed).toBe('STATUS=target-gone; 0 drifted, 0 on hold');
    stop();
    const stopping = new Promise<string>((resolve) => {
      const wait = (): void => void m.next().then((msg) => (msg === 'STOPPING=1' ? resolve(msg) : wait()));
      wait();
    });
    notifier.stopping();
    expect(await stopping).toBe('STOPPING=1');
    m.close();
  });

  it('does nothing without NOTIFY_SOCKET', () => {
    const notifier = systemdNotifier(silentLogger, {});
    expect(notifier.active).toBe(false);
  });
});
