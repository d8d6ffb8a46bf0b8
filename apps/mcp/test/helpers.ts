import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Ledger } from '@opdbus/ledger';
import { ledgerPaths } from '@opdbus/runtime';

/** The built server (the test command builds before testing). */
export const mcpBin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

/** Call a tool and return its result as the protocol carries it. */
export async function callTool(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

/** The error code of a tool error result (the text starts with it). */
export function errorCode(result: CallToolResult): string | undefined {
  if (result.isError !== true) return undefined;
  return (result._meta?.['opdbus/error'] as { code?: string } | undefined)?.code;
}

/** The ledger entries of `kind` in the state directory. */
export async function ledgerEntries(stateDir: string, kind: string): Promise<Record<string, unknown>[]> {
  const ledger = await Ledger.open({ dir: ledgerPaths(stateDir).ledgerDir, readOnly: true });
  try {
    const out: Record<string, unknown>[] = [];
    for await (const e of ledger.entries()) {
      const value = e.value as Record<string, unknown>;
      if (value.kind === kind) out.push(value);
    }
    return out;
  } finally {
    await ledger.close();
  }
}

/** Start `opdbus-mcp --http …` and resolve with the URL it prints once it listens. */
export function startHttpServer(args: readonly string[]): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [mcpBin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /serving MCP at (http:\/\/\S+\/mcp)/.exec(stderr);
      if (match?.[1] !== undefined) resolve({ child, url: match[1] });
    });
    child.once('exit', (code) =>
      reject(new Error(`opdbus-mcp exited (${code}) before listening:\n${stderr}`)),
    );
  });
}

/** Stop a server started with {@link startHttpServer} and wait for it to exit. */
export async function stopServer(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}
