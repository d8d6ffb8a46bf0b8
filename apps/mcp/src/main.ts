import { Command, CommanderError, Option } from 'commander';
import { OpdbusError } from '@opdbus/core';
import {
  createLogger,
  resolveAppPlugins,
  defaultStateDir,
  reportError,
  stdio,
  TokenFile,
  type Output,
} from '@opdbus/runtime';
import { MCP_SERVER_VERSION } from './service.js';

/** The command line of opdbus-mcp: the CLI's global options plus its own. */
export interface McpCommandOptions {
  netns?: string;
  stateDir: string;
  bus?: string;
  ovsdb?: string;
  root?: string;
  plugin?: string[];
  config?: string;
  logLevel: string;
  http?: string;
  tokenFile?: string;
  oauthIssuer?: string;
  oauthJwks?: string;
  oauthResource?: string;
  daemonSocket?: string;
  anomalyModel?: string;
  allowedOrigin?: string[];
  allowedHost?: string[];
  policy?: string;
  writeRate: string;
  confirmTimeout: string;
}

function positive(text: string, what: string, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new OpdbusError(
      'OPDBUS_ERR_USAGE',
      `${what} takes a whole number from 1 to ${max}, got "${text.slice(0, 40)}".`,
    );
  return n;
}

/** Build the `opdbus-mcp` program (parsing only; {@link main} runs it). */
export function buildProgram(output: Output = stdio): Command {
  return new Command('opdbus-mcp')
    .description(
      'MCP server for op-dbus: AI agents query, plan and apply host state under a human-approved policy; every call is recorded in the ledger. Speaks stdio by default, Streamable HTTP with --http.',
    )
    .version(MCP_SERVER_VERSION, '-V, --version')
    .option('--netns <name>', 'act inside this network namespace (a name under /run/netns, a path, or pid:N)')
    .option(
      '--state-dir <dir>',
      'state directory shared with the CLI: journals, lock, ledger',
      defaultStateDir,
    )
    .option('--bus <address>', 'D-Bus address (e.g. unix:path=/run/dbus/system_bus_socket)')
    .option('--ovsdb <address>', 'OVSDB address (e.g. unix:/run/openvswitch/db.sock)')
    .option('--root <dir>', "the target's filesystem root, for files plugins write")
    .option('--plugin <spec...>', 'load these plugin packages as well (as the CLI)')
    .option('--config <file>', 'config file (as the CLI)')
    .addOption(
      new Option('--log-level <level>', 'log level on stderr')
        .choices(['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'])
        .default('warn'),
    )
    .option(
      '--http <host:port>',
      'serve Streamable HTTP at http://HOST:PORT/mcp instead of stdio (default host 127.0.0.1)',
    )
    .option(
      '--token-file <file>',
      'bearer tokens for HTTP (lines TOKEN read|write NAME, mode 0600); required off loopback',
    )
    .option(
      '--oauth-issuer <url>',
      'HTTP: OAuth 2.1 resource-server mode, accepting JWT access tokens from this authorization server',
    )
    .option('--oauth-jwks <file|url>', "OAuth: the issuer's signing keys (a JWKS file or https URL)")
    .option(
      '--oauth-resource <url>',
      "OAuth: this server's resource URL, the audience tokens must name (default: the endpoint URL)",
    )
    .option(
      '--anomaly-model <dir>',
      'a model from `opdbus anomaly train`: adds the anomalies tool (needs @opdbus/ml)',
    )
    .option(
      '--daemon-socket <path>',
      "opdbusd's API unix socket: adds the drift tool (e.g. /run/opdbus/api.sock)",
    )
    .option('--allowed-origin <origin...>', 'HTTP: also accept requests with these Origin headers')
    .option('--allowed-host <name...>', 'HTTP on a non-loopback address: accept only these Host names')
    .option(
      '--policy <file>',
      'policy file: allow / ask / deny per tool, plugin, resource and risk (default: read-only)',
    )
    .option('--write-rate <n>', 'write tool calls a minute per session', '10')
    .option('--confirm-timeout <seconds>', 'default commit-confirmed window of apply', '120')
    .configureOutput({ writeOut: (s) => output.out(s), writeErr: (s) => output.err(s) })
    .exitOverride();
}

/**
 * Run `opdbus-mcp` with these arguments (without node and script): serve until stdin ends
 * (stdio) or SIGINT / SIGTERM (HTTP). Resolves to the exit code.
 */
export async function main(argv: readonly string[], output: Output = stdio): Promise<number> {
  const program = buildProgram(output);
  try {
    program.parse([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code)) return 0;
      return reportError(new OpdbusError('OPDBUS_ERR_USAGE', err.message.replace(/^error: /, '')), false, {
        out: () => undefined,
        err: () => undefined,
      });
    }
    return reportError(err, false, output, 'opdbus-mcp');
  }
  const options = program.opts<McpCommandOptions>();
  try {
    return await serve(options, output);
  } catch (err) {
    return reportError(err, false, output, 'opdbus-mcp');
  }
}

async function serve(options: McpCommandOptions, output: Output): Promise<number> {
  const [{ OpdbusMcp }, { Policy }] = await Promise.all([import('./service.js'), import('./policy.js')]);
  const logger = createLogger(options.logLevel, 'opdbus-mcp');
  const policy = options.policy === undefined ? Policy.readOnly() : Policy.load(options.policy);
  const tokens = options.tokenFile === undefined ? undefined : TokenFile.load(options.tokenFile);
  if (tokens !== undefined && options.http === undefined)
    throw new OpdbusError(
      'OPDBUS_ERR_MCP_UNSAFE_LISTEN',
      '--token-file is for the HTTP transport; add --http HOST:PORT (stdio is as trusted as the user who starts it).',
    );
  if ((options.oauthIssuer === undefined) !== (options.oauthJwks === undefined))
    throw new OpdbusError(
      'OPDBUS_ERR_MCP_OAUTH_CONFIG',
      "OAuth needs both --oauth-issuer URL and --oauth-jwks FILE|URL (the issuer's signing keys).",
    );
  if (options.oauthIssuer !== undefined && options.http === undefined)
    throw new OpdbusError(
      'OPDBUS_ERR_MCP_UNSAFE_LISTEN',
      '--oauth-issuer is for the HTTP transport; add --http HOST:PORT.',
    );
  const plugins = await resolveAppPlugins(
    {
      ...(options.plugin === undefined ? {} : { plugin: options.plugin }),
      ...(options.config === undefined ? {} : { config: options.config }),
    },
    logger,
  );
  const mcp = new OpdbusMcp(
    {
      stateDir: options.stateDir,
      logLevel: options.logLevel,
      ...(options.netns === undefined ? {} : { netns: options.netns }),
      ...(options.bus === undefined ? {} : { bus: options.bus }),
      ...(options.ovsdb === undefined ? {} : { ovsdb: options.ovsdb }),
      ...(options.root === undefined ? {} : { root: options.root }),
      ...(options.plugin === undefined ? {} : { plugin: options.plugin }),
      ...(options.config === undefined ? {} : { config: options.config }),
      policy,
      ...(options.daemonSocket === undefined ? {} : { daemonSocket: options.daemonSocket }),
      ...(options.anomalyModel === undefined ? {} : { anomalyModel: options.anomalyModel }),
      writeRatePerMinute: positive(options.writeRate, '--write-rate', 10_000),
      confirmTimeoutS: positive(options.confirmTimeout, '--confirm-timeout', 86_400),
    },
    { plugins, logger },
  );

  if (options.http === undefined) {
    const { StdioServerTransport } = await import('@modelcontextprotocol/sdk/server/stdio.js');
    const server = mcp.createServer({ transport: 'stdio', scope: 'write' });
    const transport = new StdioServerTransport();
    await server.connect(transport);
    // The client closing stdin ends the session: answer the requests under way first (an apply
    // must end as a whole transaction), then exit.
    const open = new Set<string | number>();
    let drained: (() => void) | undefined;
    const send = transport.send.bind(transport);
    transport.send = async (message) => {
      await send(message);
      if ('id' in message && message.id !== undefined && ('result' in message || 'error' in message)) {
        open.delete(message.id);
        if (open.size === 0) drained?.();
      }
    };
    const onmessage = transport.onmessage;
    transport.onmessage = (message) => {
      if ('method' in message && 'id' in message) open.add(message.id);
      onmessage?.(message);
    };
    const closed = new Promise<void>((resolve) => {
      transport.onclose = resolve;
      process.stdin.once('end', () => {
        if (open.size === 0) resolve();
        else drained = resolve;
      });
    });
    logger.info({ policy: policy.source }, 'opdbus-mcp serving on stdio');
    await closed;
    await server.close();
    return 0;
  }

  const { startHttp, parseListen } = await import('./http.js');
  const listen = parseListen(options.http);
  const endpoint = await startHttp(mcp, {
    ...listen,
    ...(tokens === undefined ? {} : { tokens }),
    ...(options.oauthIssuer === undefined || options.oauthJwks === undefined
      ? {}
      : {
          oauth: {
            issuer: options.oauthIssuer,
            jwks: options.oauthJwks,
            ...(options.oauthResource === undefined ? {} : { resource: options.oauthResource }),
          },
        }),
    ...(options.allowedOrigin === undefined ? {} : { allowedOrigins: options.allowedOrigin }),
    ...(options.allowedHost === undefined ? {} : { allowedHosts: options.allowedHost }),
  });
  output.err(
    `opdbus-mcp: serving MCP at ${endpoint.url} (${options.oauthIssuer !== undefined ? `OAuth access tokens from ${options.oauthIssuer}` : tokens === undefined ? 'no token file: unauthenticated and read-only' : `${tokens.size} token(s) from ${tokens.path}`}; policy: ${policy.source})`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await endpoint.close();
  return 0;
}
