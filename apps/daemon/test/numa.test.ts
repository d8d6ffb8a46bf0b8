// Where services are placed, against systemd booted in a container: opdbusd on the host targets
// the container's systemd over its bus; its desired document places a service with the numa
// plugin. GET /v1/numa shows the placement not in force, then (after an API apply sets the unit's
// CPUAffinity, NUMAPolicy and NUMAMask through systemd) in force with the CPUs systemd reports;
// the dashboard's NUMA page shows it in Chromium.
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '@opdbus/core';
import { TokenFile } from '@opdbus/runtime';
import { builtinPlugins } from '@opdbus/runtime/builtin-plugins';
import { probeSandbox, startSystemdContainer, type SystemdContainer } from '@opdbus/sandbox';
import { describeIf } from '@opdbus/sandbox/testing';
import type { FastifyInstance } from 'fastify';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApi, listen } from '../src/api.js';
import { Daemon } from '../src/daemon.js';
import type { PlacementsReport } from '../src/placements.js';

const CHROMIUM = '/usr/bin/chromium';
// With OPDBUS_DASHBOARD_SCREENSHOTS=1 the screenshot replaces docs/dashboard/numa-placements.png.
const docsShots = fileURLToPath(new URL('../../../docs/dashboard/', import.meta.url));
const probe = probeSandbox();
const WRITE = 'w'.repeat(8) + Math.random().toString(36).slice(2) + 'A1b2C3d4e5F6g7H8';
const desired =
  'version: 1\nplugins:\n  numa:\n    placements:\n      placed.service: { cpus: 1, memory: 64M }\n';

describeIf(probe.container, 'where services are placed: /v1/numa and the NUMA page against systemd', () => {
  let dir: string;
  let ct: SystemdContainer;
  let daemon: Daemon;
  let app: FastifyInstance;
  let base: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opdbusd-numa-'));
    ct = await startSystemdContainer({
      files: { '/etc/systemd/system/placed.service': '[Service]\nExecStart=/bin/sleep infinity\n' },
    });
    await writeFile(join(dir, 'desired.yaml'), desired);
    await writeFile(join(dir, 'tokens'), `${WRITE} write operator\n`);
    await chmod(join(dir, 'tokens'), 0o600);
    daemon = new Daemon({
      runtime: { stateDir: join(dir, 'state'), logLevel: 'silent', bus: ct.busAddress, root: ct.rootDir },
      desired: join(dir, 'desired.yaml'),
      mode: 'observe',
      plugins: builtinPlugins(),
      logger: silentLogger,
    });
    await daemon.start();
    await daemon.firstSync();
    const listener = { kind: 'tcp' as const, host: '127.0.0.1', port: 0, label: '127.0.0.1:0' };
    app = await buildApi({ daemon, listener, tokens: TokenFile.load(join(dir, 'tokens')), version: 'test' });
    await listen(app, listener);
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  }, 600_000);
  afterAll(async () => {
    await app?.close();
    await daemon?.stop();
    await ct?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  const numa = async (): Promise<
    PlacementsReport & { topology: { nodes: { id: number; cpus: number[] }[] } }
  > => {
    const res = await fetch(`${base}/v1/numa`, { headers: { authorization: `Bearer ${WRITE}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as PlacementsReport & { topology: { nodes: { id: number; cpus: number[] }[] } };
  };

  it('shows the placement asked for, not in force until systemd has it, then in force', async () => {
    const before = await numa();
    expect(before.error).toBeUndefined();
    expect(before.observedError).toBeUndefined();
    expect(before.placements).toHaveLength(1);
    const [p] = before.placements;
    expect(p).toMatchObject({
      unit: 'placed.service',
      desired: { cpus: [expect.any(Number)], policy: 'bind', reason: expect.stringMatching(/node/) },
      observed: { cpus: null, memoryNodes: null },
      inForce: false,
    });
    const cpu = p!.desired.cpus[0]!;
    const node = before.topology.nodes.find((n) => n.cpus.includes(cpu))!.id;
    expect(p!.desired.nodes).toEqual([node]);

    // Observe mode changed nothing; an API apply of the document sets the properties.
    const applied = await fetch(`${base}/v1/apply`, {
      method: 'POST',
      headers: { authorization: `Bearer ${WRITE}`, 'content-type': 'application/json' },
      body: JSON.stringify({ document: desired }),
    });
    expect(applied.status, await applied.clone().text()).toBe(200);
    const shown = await ct.exec('systemctl', ['show', 'placed.service', '-p', 'CPUAffinity,NUMAPolicy'], {
      check: true,
    });
    expect(shown.stdout).toContain(`CPUAffinity=${cpu}`);
    expect(shown.stdout).toContain('NUMAPolicy=bind');

    const after = await numa();
    expect(after.placements[0]).toMatchObject({
      unit: 'placed.service',
      observed: { cpus: [cpu], nodes: [node], memoryNodes: [node], policy: 'bind' },
      inForce: true,
    });
  }, 120_000);

  it.skipIf(!existsSync(CHROMIUM))(
    'draws the placed CPUs and lists the placement on the NUMA page',
    async () => {
      const cpu = (await numa()).placements[0]!.desired.cpus[0]!;
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      });
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        await page.goto(`${base}/#/numa`);
        await page.getByLabel('Token').fill(WRITE);
        await page.getByLabel('Token').press('Enter');
        await page.getByRole('heading', { level: 1, name: 'NUMA' }).waitFor();
        const row = page.locator('[data-testid="placements"] tr[data-unit="placed.service"]');
        await row.waitFor();
        await expect(row.textContent()).resolves.toMatch(/in force/);
        await expect(row.textContent()).resolves.not.toMatch(/not in force/);
        await expect(page.locator(`svg.topology g[data-cpu="${cpu}"] rect.cpu.placed`).count()).resolves.toBe(
          1,
        );
        await expect(page.locator('svg.topology rect.cpu.placed').count()).resolves.toBe(1);
        await page.screenshot({
          path: join(
            process.env.OPDBUS_DASHBOARD_SCREENSHOTS === '1' ? docsShots : dir,
            'numa-placements.png',
          ),
          fullPage: true,
        });
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});
