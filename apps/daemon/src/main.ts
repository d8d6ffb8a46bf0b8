import { readFileSync } from 'node:fs';
import { OpdbusError, type Logger } from '@opdbus/core';
import {
  TokenFile,
  resolveAppPlugins,
  createLogger,
  defaultStateDir,
  reportError,
  stdio,
  desiredSections,
} from '@opdbus/runtime';
import { Command, Option } from 'commander';
import type { FastifyInstance } from 'fastify';
import { buildApi, listen } from './api.js';
// The chat (with the MCP SDK's client) is imported only with --chat-endpoint.
import type { ChatService } from './chat.js';
import { loadScorer, type DriftPolicy, type PlanPolicy } from './anomaly.js';
import { Daemon } from './daemon.js';
import { checkListeners, parseListener } from './listen.js';
import { loadModesFile, parseModeRule, type Mode, type ModeRule } from './modes.js';
import { statusLine, systemdNotifier } from './notify.js';

/** The daemon's version (its package's). */
export const version: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

interface CommandLine {
  desired: string;
  stateDir: string;
  netns?: string;
  bus?: string;
  ovsdb?: string;
  root?: string;
  mode?: Mode;
  modeFor: string[];
  modes?: string;
  listen: string[];
  socketGroup?: string;
  tokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  plugin: string[];
  config?: string;
  poll: string[];
  pollInterval: string;
  holdAfter: string;
  holdWindow: string;
  holdFor: string;
  anomalyModel?: string;
  anomalyThreshold?: string;
  anomalyPlan: PlanPolicy;
  anomalyDrift: DriftPolicy;
  chatEndpoint?: string;
  chatKeyFile?: string;
  chatModel?: string;
  chatPolicy?: string;
  logLevel: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function positive(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0)
    throw new OpdbusError('OPDBUS_ERR_USAGE', `${what} takes a positive number, got "${text}".`);
  return n;
}

function groupId(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  const line = readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === name);
  const gid = line?.split(':')[2];
  if (gid === undefined)
    throw new OpdbusError('OPDBUS_ERR_USAGE', `--socket-group ${name}: no such group in /etc/group.`);
  return Number(gid);
}

/** The command line of `opdbusd`. */
export function program(): Command {
  return new Command('opdbusd')
    .description('keep a Linux host at its desired state from its own event streams, with an HTTP API')
    .version(version)
    .requiredOption(
      '--desired <path>',
      'the desired state: a document file, or a directory of *.yaml/*.yml/*.json merged',
    )
    .option('--state-dir <dir>', 'journal, lock and ledger (shared with the opdbus CLI)', defaultStateDir)
    .option('--netns <ns>', 'target network namespace (name under /run/netns, path, or pid:N)')
    .option('--bus <address>', 'D-Bus address of the target bus')
    .option('--ovsdb <address>', 'OVSDB address')
    .option('--root <dir>', 'root directory files are read and written under')
    .addOption(
      new Option('--mode <mode>', 'daemon-wide mode (default observe)').choices([
        'observe',
        'enforce',
        'ignore',
      ]),
    )
    .option(
      '--mode-for <pattern=mode>',
      'mode of a plugin, a resource or a pattern (network:link/br-*=observe); repeatable',
      collect,
      [],
    )
    .option('--modes <file>', 'modes file: mode: MODE and modes: { PATTERN: MODE }')
    .option(
      '--listen <spec>',
      'unix:PATH or tcp:HOST:PORT; repeatable (default unix:/run/opdbus/api.sock)',
      collect,
      [],
    )
    .option('--socket-group <group>', 'group of the unix socket (mode 0660)')
    .option('--token-file <file>', 'bearer tokens: TOKEN [read|write [NAME]] per line, mode 0600')
    .option('--tls-cert <file>', 'TLS certificate (PEM) for TCP listeners')
    .option('--tls-key <file>', 'TLS private key (PEM) for TCP listeners')
    .option('--plugin <spec>', 'load a plugin package; repeatable', collect, [])
    .option('--config <file>', 'op-dbus config file (plugins)')
    .option(
      '--poll <plugin>',
      'poll this plugin instead of watching it (default: sysctl); repeatable',
      collect,
      [],
    )
    .option('--poll-interval <ms>', 'poll period in milliseconds', '1000')
    .option(
      '--hold-after <n>',
      'flap damping: drifts of one resource within the window that put it on hold',
      '5',
    )
    .option('--hold-window <s>', 'flap damping window in seconds', '60')
    .option('--hold-for <s>', 'how long a hold lasts, in seconds', '300')
    .option('--anomaly-model <dir>', 'score API plans and drift with this model (opdbus anomaly train)')
    .option('--anomaly-threshold <score>', "alert at or above this score (default: the model's)")
    .addOption(
      new Option(
        '--anomaly-plan <policy>',
        'planned changes at or above the threshold: alert only, ask, refuse',
      )
        .choices(['off', 'ask', 'refuse'])
        .default('off'),
    )
    .addOption(
      new Option('--anomaly-drift <policy>', 'drift at or above the threshold: alert only, or roll back')
        .choices(['off', 'rollback'])
        .default('off'),
    )
    .option(
      '--chat-endpoint <url>',
      'the Chat page: an OpenAI-compatible chat-completions URL (none bundled)',
    )
    .option('--chat-model <name>', 'the Chat page: the model name sent to --chat-endpoint')
    .option('--chat-key-file <file>', "the Chat page: the endpoint's API key, alone in a file of mode 0600")
    .option(
      '--chat-policy <file>',
      "the Chat page: the MCP policy file for the model's tool calls (default: read-only)",
    )
    .option('--log-level <level>', 'pino level', process.env.OPDBUS_LOG_LEVEL ?? 'info');
}

/** Run `opdbusd` with these arguments until SIGTERM or SIGINT; resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const cmd = program().exitOverride();
  let opts: CommandLine;
  try {
    opts = cmd.parse(argv, { from: 'user' }).opts<CommandLine>();
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    return typeof code === 'number' ? code : 2;
  }
  const logger = createLogger(opts.logLevel, 'opdbusd');
  const notify = systemdNotifier(logger);
  try {
    let mode: Mode = opts.mode ?? 'observe';
    const rules: ModeRule[] = [];
    if (opts.modes !== undefined) {
      const file = loadModesFile(opts.modes);
      if (opts.mode === undefined && file.mode !== undefined) mode = file.mode;
      rules.push(...file.rules);
    }
    rules.push(...opts.modeFor.map(parseModeRule));
    const listeners = (opts.listen.length > 0 ? opts.listen : ['unix:/run/opdbus/api.sock']).map(
      parseListener,
    );
    const tokens = opts.tokenFile === undefined ? undefined : TokenFile.load(opts.tokenFile);
    if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined))
      throw new OpdbusError('OPDBUS_ERR_USAGE', '--tls-cert and --tls-key go together.');
    const tls =
      opts.tlsCert === undefined || opts.tlsKey === undefined
        ? undefined
        : { cert: readFileSync(opts.tlsCert), key: readFileSync(opts.tlsKey) };
    checkListeners(listeners, { tokens: tokens !== undefined, tls: tls !== undefined });
    const group = opts.socketGroup === undefined ? undefined : groupId(opts.socketGroup);

    if (
      opts.anomalyModel === undefined &&
      (opts.anomalyThreshold !== undefined || opts.anomalyPlan !== 'off' || opts.anomalyDrift !== 'off')
    )
      throw new OpdbusError(
        'OPDBUS_ERR_USAGE',
        '--anomaly-threshold, --anomaly-plan and --anomaly-drift need --anomaly-model DIR.',
      );
    let threshold: number | undefined;
    if (opts.anomalyThreshold !== undefined) {
      threshold = Number(opts.anomalyThreshold);
      if (!Number.isFinite(threshold) || threshold <= 0 || threshold > 1)
        throw new OpdbusError(
          'OPDBUS_ERR_USAGE',
          `--anomaly-threshold takes a score in (0, 1], got "${opts.anomalyThreshold}".`,
        );
    }
    const anomaly =
      opts.anomalyModel === undefined
        ? undefined
        : {
            scorer: await loadScorer(opts.anomalyModel, threshold),
            modelDir: opts.anomalyModel,
            plan: opts.anomalyPlan,
            drift: opts.anomalyDrift,
          };
    if (anomaly !== undefined)
      logger.info(
        {
          model: opts.anomalyModel,
          threshold: anomaly.scorer.threshold,
          plan: anomaly.plan,
          drift: anomaly.drift,
        },
        'anomaly scoring on',
      );

    const selection = { plugin: opts.plugin, ...(opts.config === undefined ? {} : { config: opts.config }) };
    const daemon = new Daemon({
      runtime: {
        stateDir: opts.stateDir,
        logLevel: opts.logLevel,
        ...(opts.netns === undefined ? {} : { netns: opts.netns }),
        ...(opts.bus === undefined ? {} : { bus: opts.bus }),
        ...(opts.ovsdb === undefined ? {} : { ovsdb: opts.ovsdb }),
        ...(opts.root === undefined ? {} : { root: opts.root }),
      },
      desired: opts.desired,
      mode,
      modeRules: rules,
      ...(opts.poll.length > 0 ? { poll: opts.poll } : {}),
      pollMs: positive(opts.pollInterval, '--poll-interval'),
      damping: {
        threshold: positive(opts.holdAfter, '--hold-after'),
        windowMs: positive(opts.holdWindow, '--hold-window') * 1000,
        holdMs: positive(opts.holdFor, '--hold-for') * 1000,
      },
      // Only the plugins the desired state names (and packages from outside); more when a
      // document or an unfinished transaction names them.
      plugins: await resolveAppPlugins(selection, logger, await desiredSections(opts.desired)),
      loadPlugins: (names) => resolveAppPlugins(selection, logger, names),
      logger,
      ...(anomaly === undefined ? {} : { anomaly }),
    });
    const chat = await chatService(opts, daemon, logger);
    await daemon.start();
    const apps: FastifyInstance[] = [];
    for (const listener of listeners) {
      const app = await buildApi({
        daemon,
        listener,
        ...(tokens === undefined ? {} : { tokens }),
        ...(tls === undefined || listener.kind !== 'tcp' ? {} : { tls }),
        ...(chat === undefined ? {} : { chat }),
        version,
      });
      await listen(app, listener, group);
      apps.push(app);
      logger.info({ listen: listener.label }, 'API listening');
    }
    const stopNotify = notify.start(daemon);
    await daemon.firstSync();
    notify.ready(daemon);

    return await new Promise<number>((resolve) => {
      const shutdown = (signal: string): void => {
        logger.info({ signal }, 'stopping');
        notify.stopping();
        stopNotify();
        void Promise.allSettled(apps.map((a) => a.close()))
          .then(() => chat?.close())
          .then(() => daemon.stop())
          .then(() => resolve(0));
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGHUP', () => {
        notify.status('reloading the desired state');
        void daemon.reload('SIGHUP').then(() => notify.status(statusLine(daemon)));
      });
    });
  } catch (err) {
    logger.fatal({ err }, 'opdbusd cannot start');
    return reportError(err, false, stdio, 'opdbusd');
  }
}

/** The Chat page's tool loop, when `--chat-endpoint` is given: the MCP tools under `--chat-policy`. */
async function chatService(
  opts: CommandLine,
  daemon: Daemon,
  logger: Logger,
): Promise<ChatService | undefined> {
  const given = [opts.chatModel, opts.chatKeyFile, opts.chatPolicy].some((o) => o !== undefined);
  if (opts.chatEndpoint === undefined) {
    if (given)
      throw new OpdbusError(
        'OPDBUS_ERR_USAGE',
        '--chat-model, --chat-key-file and --chat-policy need --chat-endpoint URL.',
      );
    return undefined;
  }
  if (opts.chatModel === undefined)
    throw new OpdbusError('OPDBUS_ERR_USAGE', '--chat-endpoint needs --chat-model NAME (the model to ask).');
  const { ChatService, parseChatEndpoint, readChatKeyFile } = await import('./chat.js');
  const endpoint = parseChatEndpoint(opts.chatEndpoint);
  const apiKey = opts.chatKeyFile === undefined ? undefined : readChatKeyFile(opts.chatKeyFile);
  const { OpdbusMcp, Policy } = await import('@opdbus/mcp');
  const mcp = new OpdbusMcp(
    {
      ...daemon.options.runtime,
      policy: opts.chatPolicy === undefined ? Policy.readOnly() : Policy.load(opts.chatPolicy),
    },
    {
      // The model may ask about any plugin: the chat's MCP server has them all.
      plugins: await resolveAppPlugins(
        { plugin: opts.plugin, ...(opts.config === undefined ? {} : { config: opts.config }) },
        logger,
      ),
      logger,
    },
  );
  logger.info(
    { endpoint: new URL(endpoint).host, model: opts.chatModel, policy: mcp.policy.source },
    'chat on',
  );
  return new ChatService({
    endpoint,
    model: opts.chatModel,
    ...(apiKey === undefined ? {} : { apiKey }),
    mcp,
    logger,
  });
}
