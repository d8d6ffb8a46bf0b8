import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Engine,
  PluginRegistry,
  parseStateDocument,
  type PluginContext,
  type WatchEvent,
} from '@opdbus/core';
import { describeIf } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createContainersPlugin } from '../src/plugin.js';
import type { ContainersSection, PodmanContainer } from '../src/schema.js';
import { TINY_IMAGE, podmanReady, startPodman, type PodmanService } from './podman.js';

const pod = (name: string, extra: Partial<PodmanContainer> = {}): PodmanContainer => ({
  name,
  image: TINY_IMAGE,
  command: ['/usr/bin/sleep', 'infinity'],
  network: 'none',
  ...extra,
});

// The Podman backend against a real `podman system service` on a private socket, with an image
// made here by `podman import` of a tarball (no registry is reachable).
describeIf(podmanReady, 'containers plugin: the Podman backend over its REST API', () => {
  let pm: PodmanService;
  let stateDir: string;
  const podman = (...args: string[]): Promise<string> => pm.podman(...args);
  // sleep(1) as PID 1 ignores SIGTERM: give it a second before SIGKILL.
  const plugin = () => createContainersPlugin({ podmanSocket: pm.socket, podmanStopTimeoutS: 1 });
  let registry: PluginRegistry;
  const doc = (section: ContainersSection) =>
    parseStateDocument(JSON.stringify({ version: 1, plugins: { containers: section } }), {
      source: 'podman.yaml',
      registry,
    });
  let engine: Engine;
  const ctx = (): PluginContext => engine.context('containers');
  const memoryLimit = async (name: string): Promise<number> => {
    const id = await podman('inspect', name, '--format', '{{.Id}}');
    return Number(
      await readFile(`/sys/fs/cgroup/memory/libpod_parent/libpod-${id}/memory.limit_in_bytes`, 'utf8'),
    );
  };
  const status = (name: string): Promise<string> => podman('inspect', name, '--format', '{{.State.Status}}');

  beforeAll(async () => {
    pm = await startPodman();
    stateDir = await mkdtemp(join(tmpdir(), 'opdbus-podman-state-'));
    registry = new PluginRegistry([plugin()]);
    engine = new Engine({
      registry,
      stateDir,
      // No system bus: the machined backend is probed and found missing.
      target: { busAddress: `unix:path=${join(pm.dir, 'no-bus')}` },
      verify: { attempts: 10, initialDelayMs: 50 },
    });
  }, 300_000);

  afterAll(async () => {
    await pm?.stop();
    if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
  });

  it('probes: machined is missing here, Podman answers', async () => {
    const probe = await plugin().probe(ctx());
    expect(probe).toMatchObject({ available: true });
    expect(probe.available && probe.detail).toMatch(
      /systemd-machined .* not available.*; Podman 4\.\d+\.\d+ at /,
    );
  });

  it('creates a running container with limits and a stopped one; the cgroup has the limit', async () => {
    const section: ContainersSection = {
      podman: [
        pod('web', { limits: { cpuQuota: 50, memoryMax: '64M', tasksMax: 32 } }),
        pod('batch', { state: 'stopped' }),
      ],
    };
    const { plan } = await engine.plan(doc(section));
    expect(plan.changes.map((c) => c.summary)).toEqual([
      'create podman container web from localhost/tiny:1 (running)',
      'create podman container batch from localhost/tiny:1 (stopped)',
    ]);
    expect((await engine.apply(doc(section))).status).toBe('committed');
    expect(await status('web')).toBe('running');
    expect(await status('batch')).toBe('created');
    expect(await memoryLimit('web')).toBe(64 * 1024 * 1024);
    expect(
      await podman('inspect', 'web', '--format', '{{.HostConfig.PidsLimit}} {{.HostConfig.CpuQuota}}'),
    ).toBe('32 50000');
    expect((await engine.plan(doc(section))).plan.changes).toEqual([]);
    const all = await plugin().query(ctx());
    // What query says, fed back, plans nothing.
    expect((await engine.plan(doc(all))).plan.changes).toEqual([]);
    // (Podman gives every container a tasks limit, 2048 by default: query says so.)
    expect(all.podman).toMatchObject([
      {
        name: 'batch',
        state: 'stopped',
        image: 'localhost/tiny:1',
        command: ['/usr/bin/sleep', 'infinity'],
        network: 'none',
      },
      {
        name: 'web',
        state: 'running',
        image: 'localhost/tiny:1',
        command: ['/usr/bin/sleep', 'infinity'],
        network: 'none',
        limits: { cpuQuota: 50, memoryMax: 67108864, tasksMax: 32 },
      },
    ]);
  });

  it('stops and starts; a rollback puts both back', async () => {
    const section: ContainersSection = {
      podman: [
        { name: 'web', state: 'stopped' },
        { name: 'batch', state: 'running' },
      ],
    };
    expect((await engine.apply(doc(section))).status).toBe('committed');
    expect(await status('web')).toBe('exited');
    expect(await status('batch')).toBe('running');
    expect((await engine.rollback()).status).toBe('rolled-back');
    expect(await status('web')).toBe('running');
    expect(await status('batch')).toBe('exited');
  });

  it('recreates a container for new limits', async () => {
    const before = await podman('inspect', 'web', '--format', '{{.Id}}');
    const section: ContainersSection = { podman: [{ name: 'web', limits: { memoryMax: '32M' } }] };
    const { plan } = await engine.plan(doc(section));
    expect(plan.changes.map((c) => c.summary)).toEqual([
      'set podman container web: memoryMax 33554432 (recreates it)',
    ]);
    expect((await engine.apply(doc(section))).status).toBe('committed');
    expect(await podman('inspect', 'web', '--format', '{{.Id}}')).not.toBe(before);
    expect(await memoryLimit('web')).toBe(32 * 1024 * 1024);
    expect(await status('web')).toBe('running');
  });

  it('removes a container; a rollback makes it again from its image', async () => {
    expect((await engine.apply(doc({ podman: [{ name: 'web', state: 'absent' }] }))).status).toBe(
      'committed',
    );
    expect(await podman('ps', '-a', '--format', '{{.Names}}')).not.toMatch(/^web$/m);
    expect((await engine.rollback()).status).toBe('rolled-back');
    expect(await status('web')).toBe('running');
    expect(await memoryLimit('web')).toBe(32 * 1024 * 1024);
  });

  it('a container whose image Podman lacks fails the transaction; what it created is removed', async () => {
    const err = await engine
      .apply(doc({ podman: [pod('first'), pod('broken', { image: 'localhost/no-such-image:1' })] }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'OPDBUS_ERR_APPLY_FAILED' });
    expect(String((err as Error).message)).toMatch(/no-such-image/);
    expect(await podman('ps', '-a', '--format', '{{.Names}}')).not.toMatch(/^(first|broken)$/m);
  });

  it("watch reports a container stopped out of band (Podman's event stream); the next apply starts it", async () => {
    let heard: (event: WatchEvent) => void = () => undefined;
    const seen = new Promise<WatchEvent>((resolve) => (heard = resolve));
    // The stream is open once watch resolves.
    const unwatch = await plugin().watch!(ctx(), (event) => {
      if (event.resource === 'podman/web' && /died|stop/.test(event.detail ?? '')) heard(event);
    });
    await podman('stop', '-t', '0', 'web');
    expect(await seen).toMatchObject({ plugin: 'containers', resource: 'podman/web' });
    await unwatch();
    const section: ContainersSection = { podman: [{ name: 'web' }] };
    expect((await engine.plan(doc(section))).plan.changes.map((c) => c.summary)).toEqual([
      'set podman container web: running',
    ]);
    expect((await engine.apply(doc(section))).status).toBe('committed');
    expect(await status('web')).toBe('running');
  });

  it('creates again a container removed underneath', async () => {
    await podman('rm', '-f', '-t', '0', 'batch');
    const section: ContainersSection = { podman: [pod('batch', { state: 'stopped' })] };
    const { plan } = await engine.plan(doc(section));
    expect(plan.changes.map((c) => c.summary)).toEqual([
      'create podman container batch from localhost/tiny:1 (stopped)',
    ]);
    expect((await engine.apply(doc(section))).status).toBe('committed');
    expect(await status('batch')).toBe('created');
  });
});
