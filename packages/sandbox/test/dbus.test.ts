import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { createNetns, listSandboxRecords, probeSandbox, startDbusDaemon } from '../src/index.js';
import { describeIf, running } from './helpers.js';

const run = promisify(execFile);
const probe = probeSandbox();

/** Call a bus method with dbus-send (a real client: it authenticates and sends Hello first). */
async function call(address: string, method: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('dbus-send', [
    `--bus=${address}`,
    '--print-reply',
    '--dest=org.freedesktop.DBus',
    '/org/freedesktop/DBus',
    `org.freedesktop.DBus.${method}`,
    ...args,
  ]);
  return stdout;
}

describeIf(probe.dbus, 'startDbusDaemon', () => {
  it('starts a private bus that answers, allows owning names, and leaves nothing when stopped', async () => {
    const bus = await startDbusDaemon();
    expect(bus.address).toMatch(/^unix:path=\/.+\/bus\.sock,guid=[0-9a-f]{32}$/);
    expect(bus.socketPath).toBe(`${bus.dir}/bus.sock`);
    expect(statSync(bus.socketPath).isSocket()).toBe(true);
    expect(running(bus.pid)).toBe(true);
    expect(readFileSync(bus.configPath, 'utf8')).toContain('<type>system</type>');

    // A fresh bus: only the bus itself and our connection.
    const names = await call(bus.address, 'ListNames');
    expect(names).toContain('string "org.freedesktop.DBus"');
    expect(names.match(/string "/g)).toHaveLength(2);
    // The permissive policy lets anyone own a well-known name (1 = primary owner).
    expect(await call(bus.address, 'RequestName', 'string:org.opdbus.SandboxTest', 'uint32:0')).toContain(
      'uint32 1',
    );
    expect(
      listSandboxRecords()
        .find((r) => r.record.id === bus.id)
        ?.record.pids.map((p) => p.pid),
    ).toEqual([bus.pid]);

    await bus.stop();
    expect(running(bus.pid)).toBe(false);
    expect(existsSync(bus.dir)).toBe(false);
    expect(listSandboxRecords().some((r) => r.record.id === bus.id)).toBe(false);
    await bus.stop(); // idempotent
  });

  it('reports a daemon that cannot start, with its log, and cleans up', async () => {
    let error: unknown;
    let dir = '';
    try {
      await using bus = await startDbusDaemon({ extraConfig: '<this-is-not-valid/>' });
      dir = bus.dir;
    } catch (err) {
      error = err;
    }
    expect(dir).toBe('');
    expect(error).toMatchObject({ code: 'OPDBUS_ERR_SANDBOX_START' });
    expect((error as Error).message).toMatch(/dbus-daemon did not start .*bus\.conf/s);
    expect((error as Error).message).toContain('this-is-not-valid');
    const leftDir = /config (\S+)\/bus\.conf/.exec((error as Error).message)?.[1] ?? '';
    expect(leftDir).not.toBe('');
    expect(existsSync(leftDir)).toBe(false);
  });

  describeIf(probe.netns, 'inside a network namespace', () => {
    it('runs the daemon in the namespace; its socket is reachable from the host', async () => {
      await using ns = await createNetns();
      await using bus = await startDbusDaemon({ netns: ns });
      expect(readlinkSync(`/proc/${bus.pid}/ns/net`)).toBe(`net:[${statSync(ns.path).ino}]`);
      expect(await call(bus.address, 'GetId')).toMatch(/string "[0-9a-f]{32}"/);
    });
  });
});
