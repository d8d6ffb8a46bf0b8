// The dashboard in a real browser (Debian's Chromium through playwright-core, headless) against
// opdbusd on a network namespace: the real daemon, engine, network plugin (rtnetlink) and ledger.
// Screenshots of each page are taken; with OPDBUS_DASHBOARD_SCREENSHOTS=1 they replace those in
// docs/dashboard/ (shown in docs/dashboard.md), otherwise they go to the test's temporary directory.
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '@opdbus/core';
import { ChangeScorer, trainModel } from '@opdbus/ml';
import { generateFleetHistory } from '@opdbus/ml/generator';
import { TokenFile } from '@opdbus/runtime';
import { builtinPlugins } from '@opdbus/runtime/builtin-plugins';
import { createNetns, probeSandbox, type SandboxNetns } from '@opdbus/sandbox';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApi, listen } from '../src/api.js';
import { Daemon } from '../src/daemon.js';

const CHROMIUM = '/usr/bin/chromium';
const probe = probeSandbox().netns;
const canRun = probe.available && existsSync(CHROMIUM);
const docsShots = fileURLToPath(new URL('../../../docs/dashboard/', import.meta.url));
let shots: string;

const WRITE = 'w'.repeat(8) + Math.random().toString(36).slice(2) + 'A1b2C3d4e5F6g7H8';
const READ = 'r'.repeat(8) + Math.random().toString(36).slice(2) + 'Z9y8X7w6V5u4T3s2';

let dir: string;
let ns: SandboxNetns;
let daemon: Daemon;
let app: FastifyInstance;
let base: string;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!canRun) return;
  dir = await mkdtemp(join(tmpdir(), 'opdbusd-dashboard-'));
  ns = await createNetns();
  await ns.exec('ip', ['link', 'add', 'br-d1', 'type', 'bridge'], { check: true });
  await ns.exec('ip', ['link', 'set', 'br-d1', 'up'], { check: true });
  await writeFile(
    join(dir, 'desired.yaml'),
    'version: 1\nplugins:\n  network:\n    links:\n      - { name: br-d1, kind: bridge, state: up }\n',
  );
  await writeFile(join(dir, 'tokens'), `${WRITE} write operator\n${READ} read viewer\n`);
  await chmod(join(dir, 'tokens'), 0o600);
  // A small anomaly model (generated history, no autoencoder) for the Anomalies page.
  const { history } = generateFleetHistory({ seed: 3, weeks: 2, testWeeks: 1, hosts: 4 });
  await (await trainModel(history, { autoencoder: false })).save(join(dir, 'model'));
  daemon = new Daemon({
    runtime: { stateDir: join(dir, 'state'), logLevel: 'silent', netns: ns.name },
    desired: join(dir, 'desired.yaml'),
    mode: 'observe',
    targetCheckMs: 200,
    plugins: builtinPlugins(),
    logger: silentLogger,
    anomaly: {
      scorer: await ChangeScorer.load(join(dir, 'model')),
      modelDir: join(dir, 'model'),
      plan: 'off',
      drift: 'off',
    },
  });
  await daemon.start();
  await daemon.firstSync();
  const listener = { kind: 'tcp' as const, host: '127.0.0.1', port: 0, label: '127.0.0.1:0' };
  app = await buildApi({
    daemon,
    listener,
    tokens: TokenFile.load(join(dir, 'tokens')),
    version: 'test',
  });
  await listen(app, listener);
  const address = app.server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  shots = process.env.OPDBUS_DASHBOARD_SCREENSHOTS === '1' ? docsShots : join(dir, 'shots');
  await mkdir(shots, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (err) => console.error('page error:', err));
});

// When a step fails, say what the page showed.
afterEach(async (ctx) => {
  if (canRun && ctx.task.result?.state === 'fail')
    console.error(
      'the page showed:\n',
      await page
        .locator('body')
        .innerText()
        .catch(() => '(nothing)'),
    );
});

afterAll(async () => {
  if (!canRun) return;
  await browser?.close();
  await app?.close();
  await daemon?.stop();
  await ns?.destroy();
  await rm(dir, { recursive: true, force: true });
});

const shot = (name: string): Promise<Buffer> =>
  page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

async function go(path: string, title: string): Promise<void> {
  await page.getByRole('link', { name: title, exact: true }).click();
  await page.waitForURL(`**/#/${path}`);
  await page.getByRole('heading', { level: 1, name: title }).waitFor();
}

describe.skipIf(!canRun)('the dashboard in Chromium against opdbusd in a network namespace', () => {
  it('logs in with a token and shows the overview, live', async () => {
    await page.goto(base);
    await page.getByLabel('Token').fill('not-a-token');
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/OPDBUS_ERR_API_UNAUTHORIZED/);
    await shot('login');
    // By keyboard: the token field submits with Enter; Tab reaches the skip link, then the pages.
    await page.getByLabel('Token').fill(WRITE);
    await page.getByLabel('Token').press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await page.keyboard.press('Tab');
    await expect(page.evaluate('document.activeElement?.textContent')).resolves.toBe('Skip to content');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await expect(page.evaluate('document.activeElement?.textContent')).resolves.toBe('State');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'State' }).waitFor();
    // Focus moves to the new page's heading once it has rendered (an effect after the render).
    await page.waitForFunction("document.activeElement?.id === 'page-title'");
    await page.getByRole('link', { name: 'Overview', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await page.getByText('operator (write)').waitFor();
    await page.locator('.live.on').waitFor();
    await page.getByTestId('daemon-status').filter({ hasText: 'watching' }).waitFor();
    const cookie = (await page.context().cookies()).find((c) => c.name === 'opdbus_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', secure: false });
    await shot('overview');
  });

  it('shows a drift live after ip link set down in the namespace', async () => {
    await go('drift', 'Drift');
    await page.getByTestId('drift-summary').filter({ hasText: 'Every managed resource' }).waitFor();
    await ns.exec('ip', ['link', 'set', 'br-d1', 'down'], { check: true });
    const item = page.locator('.drift-item[data-key="network:link/br-d1"]');
    await item.waitFor();
    await expect(item.textContent()).resolves.toMatch(/observed/);
    await page.locator('ol.events li').first().waitFor();
    // Drift over time, from the ledger's drift entries: this one is counted once it is recorded.
    await page
      .getByTestId('drift-history')
      .filter({ hasText: /From the ledger: [1-9]\d* resource\(s\) drifted/ })
      .waitFor();
    await page.locator('figure[data-plot="drifted"] canvas').waitFor();
    await shot('drift');
  });

  it('plans and applies with commit-confirmed, confirms, and verifies', async () => {
    await go('plan', 'Plan & apply');
    await page
      .getByLabel('State document (YAML or JSON)')
      .fill(
        'version: 1\nplugins:\n  network:\n    links:\n      - { name: br-d2, kind: bridge, state: up }\n',
      );
    await page.getByRole('button', { name: 'Plan', exact: true }).click();
    await page
      .getByTestId('plan-summary')
      .filter({ hasText: /^1 change/ })
      .waitFor();
    await page.getByLabel(/Commit-confirmed/).fill('300');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByTestId('apply-status').filter({ hasText: 'pending-confirm' }).waitFor();
    await page
      .getByTestId('countdown')
      .filter({ hasText: /Rolls back in \d+ s/ })
      .waitFor();
    await shot('apply-pending');
    const link = await ns.exec('ip', ['-j', 'link', 'show', 'br-d2']);
    expect(link.code).toBe(0);
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByTestId('apply-status').filter({ hasText: 'committed' }).waitFor();
    await page.getByTestId('verify-result').filter({ hasText: 'Verified' }).waitFor();
    await shot('plan-apply');
    await go('transactions', 'Transactions');
    await page.getByText('committed').first().waitFor();
    // Transactions per hour and each one's duration, drawn by uPlot.
    await page.locator('figure[data-plot="transactions"] canvas').waitFor();
    await page.locator('figure[data-plot="durations"] canvas').waitFor();
    await shot('transactions');
  });

  it('lists snapshots and restores one as a plan; draws the NUMA topology; scores the changes', async () => {
    await go('snapshots', 'Snapshots');
    const restore = page.getByRole('button', { name: /^Restore snapshot .* as a plan$/ }).first();
    await restore.waitFor();
    await shot('snapshots');
    await restore.click();
    await page.getByRole('heading', { level: 1, name: 'Plan & apply' }).waitFor();
    await expect(page.getByLabel('State document (YAML or JSON)').inputValue()).resolves.toMatch(/"network"/);
    await page.getByRole('button', { name: 'Plan', exact: true }).click();
    await page
      .getByTestId('plan-summary')
      .filter({ hasText: /^\d+ change/ })
      .waitFor();

    await go('numa', 'NUMA');
    const svg = page.getByRole('img', { name: /^Topology: \d+ package\(s\), \d+ NUMA node\(s\)/ });
    await svg.waitFor();
    await expect(svg.locator('rect.cpu').count()).resolves.toBeGreaterThan(0);
    await shot('numa');

    await go('anomalies', 'Anomalies');
    const scored = page.locator('tbody tr', { hasText: 'network/link/br-d2' });
    await scored.first().waitFor();
    await expect(scored.first().textContent()).resolves.toMatch(/^\d\.\d{3}/);
    await shot('anomalies');

    await go('compliance', 'Compliance');
    await page.getByLabel('Framework').selectOption('soc2');
    await page.getByRole('button', { name: 'Make the report' }).click();
    await page
      .getByTestId('compliance-summary')
      .filter({ hasText: /^\d+ pass, \d+ fail, \d+ manual, \d+ not applicable · host / })
      .waitFor();
    await expect(page.locator('tbody tr').count()).resolves.toBeGreaterThan(3);
    await shot('compliance');
  });

  it('shows the state with the desired value beside the observed one', async () => {
    await go('state', 'State');
    await page.getByLabel('Search').fill('br-d1');
    const row = page.locator('tr.differs', { hasText: 'links[br-d1].state' });
    await row.waitFor();
    await expect(row.textContent()).resolves.toMatch(/down.*up/);
    await shot('state');
  });

  it('verifies a proof in the browser, and fails it for a tampered entry', async () => {
    await go('ledger', 'Ledger');
    const newest = page.locator('ol.timeline > li').first();
    await newest.waitFor();
    const index = Number(await newest.getAttribute('data-index'));
    await newest.getByRole('button', { name: `Verify entry ${index}` }).click();
    await newest.getByTestId('verdict').waitFor();
    await expect(newest.getByTestId('verdict').textContent()).resolves.toMatch(
      /verified in this browser[\s\S]*checkpoint signature: Ed25519 signature[\s\S]*inclusion proof/,
    );
    await page.getByRole('button', { name: /Check consistency/ }).click();
    await page.getByText('remembered checkpoint: none yet').waitFor();

    // A test fixture serves the entry with one field changed; the proof and checkpoint stay real.
    await page.route(`**/v1/ledger/entries/${index}`, async (route) => {
      const res = await route.fetch();
      const body = (await res.json()) as { entry: Record<string, unknown> };
      body.entry.actor = { kind: 'user', name: 'mallory', uid: 0, pid: 1 };
      await route.fulfill({ response: res, json: body });
    });
    await newest.getByRole('button', { name: `Verify entry ${index}` }).click();
    await newest.getByText(`entry ${index}: NOT verified`).waitFor();
    await expect(newest.getByTestId('verdict').textContent()).resolves.toMatch(
      /✘ inclusion proof: The entry's hash does not lead to the signed root/,
    );
    await shot('ledger');
    await page.unroute(`**/v1/ledger/entries/${index}`);

    // A later checkpoint extends the remembered one.
    await ns.exec('ip', ['link', 'set', 'br-d1', 'up'], { check: true });
    await page.getByRole('button', { name: /Check consistency/ }).click();
    await page.getByText(/consistency proof: the log of \d+ entries extends the one of \d+/).waitFor();
  });

  it('holds the API rules for sessions: CSRF token, read scope, logout', async () => {
    const login = async (token: string): Promise<{ cookie: string; csrf: string }> => {
      const res = await fetch(`${base}/v1/session`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
      const cookie = /opdbus_session=[^;]+/.exec(res.headers.get('set-cookie') ?? '')![0];
      return { cookie, csrf: ((await res.json()) as { csrf: string }).csrf };
    };
    const post = (s: { cookie: string; csrf?: string }, path: string, body: unknown, origin?: string) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: {
          cookie: s.cookie,
          'content-type': 'application/json',
          ...(s.csrf === undefined ? {} : { 'x-csrf-token': s.csrf }),
          ...(origin === undefined ? {} : { origin }),
        },
        body: JSON.stringify(body),
      });
    const doc = { document: 'version: 1\nplugins: {}\n' };
    const viewer = await login(READ);
    expect((await fetch(`${base}/v1/state`, { headers: { cookie: viewer.cookie } })).status).toBe(200);
    expect((await post(viewer, '/v1/apply', doc)).status).toBe(403);
    const operator = await login(WRITE);
    expect((await post({ cookie: operator.cookie }, '/v1/apply', doc)).status).toBe(403);
    expect((await post(operator, '/v1/apply', doc, 'http://evil.example')).status).toBe(403);
    expect((await post(operator, '/v1/plan', doc)).status).toBe(200);

    const browserCookie = (await page.context().cookies()).find((c) => c.name === 'opdbus_session')!;
    await page.setViewportSize({ width: 375, height: 800 });
    await go('overview', 'Overview');
    await shot('overview-phone');
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Token').waitFor();
    const old = await fetch(`${base}/v1/state`, {
      headers: { cookie: `opdbus_session=${browserCookie.value}` },
    });
    expect(old.status).toBe(401);

    // Failed logins count toward the per-peer limit of failed authentications.
    let last = 0;
    for (let i = 0; i < 30 && last !== 429; i++)
      last = (
        await fetch(`${base}/v1/session`, { method: 'POST', headers: { authorization: 'Bearer wrong' } })
      ).status;
    expect(last).toBe(429);
  });
});
