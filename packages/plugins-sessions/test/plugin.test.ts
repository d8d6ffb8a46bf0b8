import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, PluginRegistry, isOpdbusError, parseStateDocument, type WatchEvent } from '@opdbus/core';
import { probeSandbox, startSystemdContainer, type SystemdContainer } from '@opdbus/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSessionsPlugin, matchesSelector, type SessionsSection } from '../src/plugin.js';
import { describeIf } from '@opdbus/sandbox/testing';

const probe = probeSandbox().container;
const plugin = createSessionsPlugin();

describe('session selectors', () => {
  const session = {
    user: 'bob',
    uid: 1000,
    class: 'user',
    type: 'tty',
    service: 'sshd',
    state: 'active',
    active: true,
    remote: true,
    remoteHost: '10.0.0.9',
  };
  it('match when every given field matches', () => {
    expect(matchesSelector(session, { user: 'bob' })).toBe(true);
    expect(matchesSelector(session, { user: 'bob', remote: true, service: 'sshd' })).toBe(true);
    expect(matchesSelector(session, { user: 'bob', remote: false })).toBe(false);
    expect(matchesSelector(session, { remoteHost: '10.0.0.8' })).toBe(false);
  });
});

describeIf(probe, 'the termination policy against a real logind', () => {
  let ct: SystemdContainer;
  let stateDir: string;
  let engine: Engine;
  const registry = new PluginRegistry([plugin]);
  const doc = (section: SessionsSection) =>
    parseStateDocument(JSON.stringify({ version: 1, plugins: { sessions: section } }), {
      source: 'test',
      registry,
    });
  beforeAll(async () => {
    ct = await startSystemdContainer();
    await ct.exec('useradd', ['--create-home', 'opdbus'], { check: true });
    stateDir = await mkdtemp(join(tmpdir(), 'opdbus-sessions-'));
    engine = new Engine({
      registry,
      stateDir,
      target: { busAddress: await ct.insideBusAddress(), root: ct.rootDir },
    });
  }, 600_000);
  afterAll(async () => {
    await ct?.stop();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('observes by default, refuses to terminate without --force, terminates with it', async () => {
    const events: WatchEvent[] = [];
    let opened!: (id: string) => void;
    const sessionOpened = new Promise<string>((resolve) => (opened = resolve));
    const unsubscribe = await plugin.watch!(engine.context('sessions'), (event) => {
      events.push(event);
      if ((event.raw as { signal?: string } | undefined)?.signal === 'SessionNew')
        opened(event.resource!.slice('session/'.length));
    });
    // A login session of "opdbus", opened through PAM (pam_systemd) by su inside the container.
    const login = ct.exec('su', ['--login', 'opdbus', '--command', 'exec sleep 300']);
    const id = await sessionOpened;
    const observed = await plugin.query(engine.context('sessions'));
    expect(observed.sessions?.[id]).toMatchObject({ user: 'opdbus', uid: 1000, service: 'su-l' });
    expect(observed.users?.opdbus?.sessions).toContain(id);

    const policy = { match: [{ user: 'opdbus', service: 'su-l' }] };
    expect((await engine.plan(doc({ terminate: policy }))).plan.changes).toEqual([]);
    const enforce = doc({ terminate: { ...policy, mode: 'enforce' } });
    const { plan } = await engine.plan(enforce);
    expect(plan.changes.map((c) => c.resource)).toEqual([`session/${id}`]);
    expect(plan.changes[0]!.risk?.reason).toContain('cannot be undone');
    const refused = await engine.apply(enforce).catch((e: unknown) => e);
    expect(isOpdbusError(refused, 'OPDBUS_ERR_RISKY_CHANGE')).toBe(true);

    let closed!: () => void;
    const sessionClosed = new Promise<void>((resolve) => (closed = resolve));
    const off = await plugin.watch!(engine.context('sessions'), (event) => {
      if (
        event.resource === `session/${id}` &&
        (event.raw as { signal?: string }).signal === 'SessionRemoved'
      )
        closed();
    });
    expect((await engine.apply(enforce, { force: true })).status).toBe('committed');
    await sessionClosed;
    await off();
    await unsubscribe();
    const result = await login;
    expect(result.code).not.toBe(0);
    expect((await plugin.query(engine.context('sessions'))).sessions?.[id]).toBeUndefined();
    expect(events.some((e) => e.resource === `session/${id}`)).toBe(true);
  });
});
