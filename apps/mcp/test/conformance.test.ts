// The official MCP conformance suite against `opdbus-mcp --http`. The suite needs Node 22 (this
// project runs on Node 20), so Node 22 and the suite are installed from npm into a tools folder of
// the checkout (.tools/mcp-conformance, ignored by git), never globally; the first run installs
// them, later runs reuse them.
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, stopServer } from './helpers.js';

const CONFORMANCE_VERSION = '0.1.16';
const NODE_MAJOR = '22';
const tools = fileURLToPath(new URL('../../../.tools/mcp-conformance/', import.meta.url));
const node22 = join(tools, 'node_modules', 'node', 'bin');
const conformanceBin = join(tools, 'node_modules', '.bin', 'conformance');

/** The scenarios that need none of the suite's own fixture tools (see docs/mcp.md). */
const SCENARIOS = [
  'server-initialize',
  'ping',
  'logging-set-level',
  'tools-list',
  'resources-list',
  'prompts-list',
  'server-sse-multiple-streams',
  'dns-rebinding-protection',
];

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeout = 120_000,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: { ...process.env, ...env }, timeout, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}

async function installTools(): Promise<void> {
  if (existsSync(conformanceBin) && existsSync(join(node22, 'node'))) return;
  await mkdir(tools, { recursive: true });
  const npm = await run(
    'npm',
    [
      'install',
      '--prefix',
      tools,
      '--no-fund',
      '--no-audit',
      `node@${NODE_MAJOR}`,
      `@modelcontextprotocol/conformance@${CONFORMANCE_VERSION}`,
    ],
    {},
    300_000,
  );
  if (npm.code !== 0) throw new Error(`installing the conformance suite failed:\n${npm.output}`);
}

describe('the official MCP conformance suite against opdbus-mcp --http', () => {
  let dir: string;
  let server: ChildProcess | undefined;
  let url: string;

  beforeAll(async () => {
    await installTools();
    dir = await mkdtemp(join(tmpdir(), 'opdbus-mcp-conformance-'));
    ({ child: server, url } = await startHttpServer([
      '--http',
      '127.0.0.1:0',
      '--state-dir',
      join(dir, 'state'),
    ]));
  }, 360_000);
  afterAll(async () => {
    await stopServer(server);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('runs on Node 22 from the tools folder', async () => {
    const version = await run(join(node22, 'node'), ['--version']);
    expect(version.output.trim()).toMatch(new RegExp(`^v${NODE_MAJOR}\\.`));
  });

  for (const scenario of SCENARIOS) {
    it(scenario, async () => {
      const result = await run(conformanceBin, ['server', '--url', url, '--scenario', scenario], {
        PATH: `${node22}:${process.env.PATH ?? ''}`,
        NO_COLOR: '1',
        FORCE_COLOR: '0',
      });
      // eslint-disable-next-line no-control-regex -- the suite colours its report
      const plain = result.output.replace(/\u001b\[[0-9;]*m/g, '');
      const passed = /Passed: (\d+)\/(\d+), (\d+) failed, (\d+) warnings/.exec(plain);
      expect(passed, plain).not.toBeNull();
      expect(passed?.[1], plain).toBe(passed?.[2]);
      expect(passed?.[3], plain).toBe('0');
      expect(result.code, plain).toBe(0);
    });
  }
});
