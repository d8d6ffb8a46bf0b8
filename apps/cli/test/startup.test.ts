// What a command loads at start-up, from the bundled CLI's own account of the scripts it ran
// (OPDBUS_DEBUG_CHUNKS=1): a command that validates no document loads no zod.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliBin, runCli, type CliResult } from './helpers.js';
import { describeIf, requirement } from '@opdbus/sandbox/testing';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');

const env = { OPDBUS_DEBUG_CHUNKS: '1' };
/** The scripts a command ran, as the bundled CLI lists them on stderr. */
const scripts = (result: CliResult): string[] =>
  (/opdbus: scripts run: (.*)/.exec(result.stderr)?.[1] ?? '').split(', ').filter((s) => s !== '');

/** The built-in plugins other than network (apps/cli/test/network.test.ts) and sysctl (below). */
const others = [
  'systemd',
  'dbus',
  'ovs',
  'firewall',
  'hostname',
  'timedate',
  'users',
  'sessions',
  'ssh',
  'dns',
  'pci',
  'packages',
  'numa',
  'wireguard',
  'containers',
];

describeIf(asRoot, 'opdbus start-up, in a fresh namespace', () => {
  let netns: SandboxNetns;
  let dir: string;
  let global: string[];

  beforeAll(async () => {
    netns = await createNetns();
    dir = await mkdtemp(join(tmpdir(), 'opdbus-cli-startup-'));
    // No bus and no OVSDB server at these addresses: the plugins that need one are unavailable.
    global = [
      '--netns',
      netns.name,
      '--state-dir',
      join(dir, 'state'),
      '--bus',
      `unix:path=${join(dir, 'no-bus')}`,
      '--ovsdb',
      `unix:${join(dir, 'no-ovsdb')}`,
    ];
  });
  afterAll(async () => {
    await netns?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('a scoped query of sysctl loads no zod', async () => {
    const queried = await runCli([...global, 'query', '--plugin', 'sysctl'], { env });
    expect(queried.code, queried.stderr).toBe(0);
    expect(queried.stdout).toContain('net.ipv4.ip_forward');
    const ran = scripts(queried);
    expect(ran.some((s) => s.startsWith('chunks/query-'))).toBe(true);
    expect(ran.filter((s) => s.includes('zod'))).toEqual([]);
  });

  it.each(others)(
    'a scoped query of %s loads no zod, whether the plugin is available or not',
    async (name) => {
      const queried = await runCli([...global, 'query', '--plugin', name], { env });
      // Available: its section is printed; unavailable (no bus, no OVSDB here): exit 4 saying why.
      if (queried.code === 0) expect(queried.stdout, queried.stderr).toMatch(new RegExp(`^  ${name}:`, 'm'));
      else {
        expect(queried.code, queried.stderr).toBe(4);
        expect(queried.stderr).toContain(`Plugin "${name}" is not available here`);
      }
      expect(scripts(queried).filter((s) => s.includes('zod'))).toEqual([]);
    },
  );

  it('transactions and --help load no zod; printing the schema, which builds every schema, does', async () => {
    for (const args of [[...global, 'transactions'], ['--help']]) {
      const result = await runCli(args, { env });
      expect(result.code, result.stderr).toBe(0);
      expect(scripts(result).length, args.join(' ')).toBeGreaterThan(0);
      expect(
        scripts(result).filter((s) => s.includes('zod')),
        args.join(' '),
      ).toEqual([]);
    }
    const schema = await runCli(['schema'], { env });
    expect(schema.code, schema.stderr).toBe(0);
    expect(scripts(schema).some((s) => /^chunks\/zod-/.test(s))).toBe(true);
  });

  it("a query runs no script that holds yaml's parser; a diff, which parses its document, does", async () => {
    const lexer = 'yaml/dist/parse/lexer.js';
    const holdsParser = async (result: CliResult): Promise<boolean> => {
      const texts = await Promise.all(
        scripts(result).map((s) => readFile(join(dirname(cliBin), s.split(' ')[0]!), 'utf8')),
      );
      return texts.some((text) => text.includes(lexer));
    };
    const queried = await runCli([...global, 'query', '--plugin', 'network'], { env });
    expect(queried.code, queried.stderr).toBe(0);
    expect(await holdsParser(queried)).toBe(false);
    const doc = join(dir, 'parsed.yaml');
    await writeFile(doc, 'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_forward: 0\n');
    const diff = await runCli([...global, 'diff', doc], { env });
    expect(diff.code, diff.stderr).toBe(0);
    expect(await holdsParser(diff)).toBe(true);
  });

  it('keeps code caches per command: a query starts with the caches of queries, not those of diff', async () => {
    const cache = join(dir, 'code-cache');
    const cacheEnv = { ...env, OPDBUS_CODE_CACHE: cache };
    const doc = join(dir, 'doc.yaml');
    await writeFile(doc, 'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_forward: 1\n');
    const diff = await runCli([...global, 'diff', doc], { env: cacheEnv });
    expect(diff.code, diff.stderr).toBe(2);
    expect(diff.stderr).toContain(`opdbus: code caches: ${cache}, those of diff`);
    const query = async (): Promise<CliResult> => {
      const result = await runCli([...global, 'query', '--plugin', 'sysctl'], { env: cacheEnv });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain(`opdbus: code caches: ${cache}, those of query`);
      return result;
    };
    // The first query compiles every script (diff's caches are not its own) and writes its caches.
    expect(scripts(await query()).filter((s) => s.includes('(cached)'))).toEqual([]);
    const second = scripts(await query());
    expect(second.length).toBeGreaterThan(0);
    expect(second.filter((s) => !s.includes('(cached)'))).toEqual([]);
    const files = await readdir(cache);
    expect(files.some((f) => /@diff\.v[\d.]+-\w+(\+[0-9a-f]{8})?\.v8$/.test(f))).toBe(true);
    expect(files.some((f) => /@query\.v[\d.]+-\w+(\+[0-9a-f]{8})?\.v8$/.test(f))).toBe(true);
    expect(files.filter((f) => !/@(diff|query)\./.test(f))).toEqual([]);
  });
});
