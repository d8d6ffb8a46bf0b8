// The tools and notifications beyond the core set, end to end with the SDK client over stdio:
// resource notifications when a transaction ends, snapshots_restore (a plan back to a snapshot),
// numa_placement against this machine's topology, and drift read from a running opdbusd over its
// unix socket — all against real components (a network namespace, the real daemon process).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { describeIf, requirement } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { callTool, mcpBin } from './helpers.js';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');
const daemonBin = fileURLToPath(new URL('../../daemon/dist/bin.js', import.meta.url));
const cliBin = fileURLToPath(new URL('../../cli/dist/bin.js', import.meta.url));

const bridge = (name: string): string =>
  `version: 1\nplugins:\n  network:\n    links:\n      - { name: ${name}, kind: bridge, state: up }\n`;

function healthz(socketPath: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/healthz' }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

describeIf(
  asRoot,
  'opdbus-mcp tools: snapshots_restore, numa_placement, drift, resource notifications',
  () => {
    let netns: SandboxNetns;
    let dir: string;
    let daemon: ChildProcess | undefined;
    let client: Client;
    const listChanged: unknown[] = [];
    const updated: string[] = [];
    let onNotification: (() => void) | undefined;

    beforeAll(async () => {
      netns = await createNetns();
      dir = await mkdtemp(join(tmpdir(), 'opdbus-mcp-tools-'));
      await writeFile(
        join(dir, 'policy.yaml'),
        'version: 1\nrules:\n  - { tools: [apply, confirm, rollback], plugins: network, action: allow }\n',
      );
      await writeFile(join(dir, 'desired.yaml'), bridge('br-watched'));
      await netns.exec('ip', ['link', 'add', 'br-watched', 'type', 'bridge'], { check: true });
      await netns.exec('ip', ['link', 'set', 'br-watched', 'up'], { check: true });
      const socket = join(dir, 'api.sock');
      daemon = spawn(
        process.execPath,
        [
          daemonBin,
          '--desired',
          join(dir, 'desired.yaml'),
          '--state-dir',
          join(dir, 'daemon-state'),
          '--netns',
          netns.name,
          '--mode',
          'observe',
          '--listen',
          `unix:${socket}`,
        ],
        { stdio: 'ignore' },
      );
      while ((await healthz(socket)) !== 200) {
        expect(daemon.exitCode).toBeNull();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      client = new Client({ name: 'tools-test', version: '1' });
      client.setNotificationHandler(ResourceListChangedNotificationSchema, (n) => {
        listChanged.push(n);
        onNotification?.();
      });
      client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
        updated.push(n.params.uri);
        onNotification?.();
      });
      await client.connect(
        new StdioClientTransport({
          command: process.execPath,
          args: [
            mcpBin,
            '--netns',
            netns.name,
            '--state-dir',
            join(dir, 'state'),
            '--policy',
            join(dir, 'policy.yaml'),
            '--daemon-socket',
            socket,
          ],
          stderr: 'pipe',
        }),
      );
    }, 60_000);
    afterAll(async () => {
      await client?.close();
      if (daemon !== undefined && daemon.exitCode === null) {
        const exited = new Promise((resolve) => daemon!.once('exit', resolve));
        daemon.kill('SIGTERM');
        await exited;
      }
      await netns?.destroy();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    it('notifies list_changed, and resources/updated for a subscribed resource, when a transaction ends', async () => {
      expect(client.getServerCapabilities()?.resources).toMatchObject({ subscribe: true, listChanged: true });
      await client.subscribeResource({ uri: 'opdbus://transactions' });
      const notified = new Promise<void>((resolve) => {
        onNotification = () => {
          if (listChanged.length > 0 && updated.includes('opdbus://transactions')) resolve();
        };
      });
      const applied = await callTool(client, 'apply', { document: bridge('br-m1'), commitConfirmed: false });
      expect(applied.isError, JSON.stringify(applied.content)).not.toBe(true);
      await notified;
      expect(listChanged.length).toBeGreaterThan(0);
    });

    it('notifies too when another process (the CLI) changes the host through the same state directory', async () => {
      listChanged.length = 0;
      updated.length = 0;
      const notified = new Promise<void>((resolve) => {
        onNotification = () => {
          if (listChanged.length > 0 && updated.includes('opdbus://transactions')) resolve();
        };
      });
      await writeFile(join(dir, 'cli.yaml'), bridge('br-cli'));
      const cli = spawnSync(
        process.execPath,
        [cliBin, '--netns', netns.name, '--state-dir', join(dir, 'state'), 'apply', join(dir, 'cli.yaml')],
        { encoding: 'utf8' },
      );
      expect(cli.status, cli.stderr).toBe(0);
      await notified;
    });

    it('snapshots_restore: the plan back to a snapshot, changing nothing', async () => {
      const list = await callTool(client, 'snapshots_list');
      const snaps = (list.structuredContent as { snapshots: { id: string; status: string }[] }).snapshots;
      expect(snaps.length).toBeGreaterThan(0);
      const id = snaps.at(-1)!.id;
      const same = await callTool(client, 'snapshots_restore', { id });
      expect(same.isError, JSON.stringify(same.content)).not.toBe(true);
      expect((same.structuredContent as { changes: unknown[] }).changes).toEqual([]);
      await netns.exec('ip', ['link', 'set', 'br-m1', 'down'], { check: true });
      const back = await callTool(client, 'snapshots_restore', { id });
      expect(back.isError, JSON.stringify(back.content)).not.toBe(true);
      const changes = (back.structuredContent as { changes: { resource: string; action: string }[] }).changes;
      expect(changes.some((c) => c.resource.includes('br-m1'))).toBe(true);
      // A plan only: the bridge is still down.
      expect((await netns.exec('ip', ['-br', 'link', 'show', 'br-m1'])).stdout).toMatch(/DOWN/);
      const missing = await callTool(client, 'snapshots_restore', { id: 'no-such-snapshot' });
      expect(missing.isError).toBe(true);
    });

    it("numa_placement: resolves a placement request against this machine's topology", async () => {
      const result = await callTool(client, 'numa_placement', {
        section: 'placements:\n  web.service: { cpus: 1 }\n',
      });
      expect(result.isError, JSON.stringify(result.content)).not.toBe(true);
      const placed = result.structuredContent as {
        placements: { unit: string; properties: Record<string, string> }[];
      };
      expect(placed.placements[0]).toMatchObject({ unit: 'web.service' });
      expect(placed.placements[0]?.properties.CPUAffinity).toMatch(/^\d+$/);
      const bad = await callTool(client, 'numa_placement', {
        section: 'placements:\n  web.service: { cpus: -1 }\n',
      });
      expect(bad.isError).toBe(true);
    });

    it('drift: what the running opdbusd reports, read over its unix socket', async () => {
      const clean = await callTool(client, 'drift');
      expect(clean.isError, JSON.stringify(clean.content)).not.toBe(true);
      expect((clean.structuredContent as { drift: unknown[] }).drift).toEqual([]);
      await netns.exec('ip', ['link', 'set', 'br-watched', 'down'], { check: true });
      let report = await callTool(client, 'drift');
      while (!JSON.stringify(report.structuredContent).includes('br-watched')) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        report = await callTool(client, 'drift');
      }
      expect((report.structuredContent as { drift: { key: string }[] }).drift[0]?.key).toContain(
        'br-watched',
      );
    });
  },
);
