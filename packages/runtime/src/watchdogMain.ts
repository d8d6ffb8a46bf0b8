#!/usr/bin/env node
// `opdbus-watchdog --state-dir DIR [--log-level L] [--plugin SPEC]... [--config FILE] TXID`: the commit-confirmed watchdog process,
// started by spawnWatchdog (internal; not meant to be run by hand).
import { parseArgs } from 'node:util';
import { reportFatal } from './report.js';
import { runWatchdogProcess } from './watchdogProcess.js';

try {
  const { values, positionals } = parseArgs({
    options: {
      'state-dir': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      plugin: { type: 'string', multiple: true },
      config: { type: 'string' },
    },
    allowPositionals: true,
  });
  const stateDir = values['state-dir'];
  if (stateDir === undefined || positionals.length !== 1)
    throw new Error(
      'usage: opdbus-watchdog --state-dir DIR [--log-level LEVEL] [--plugin SPEC]... [--config FILE] TXID',
    );
  process.exitCode = await runWatchdogProcess(
    {
      stateDir,
      logLevel: values['log-level'],
      ...(values.plugin === undefined ? {} : { plugin: values.plugin }),
      ...(values.config === undefined ? {} : { config: values.config }),
    },
    positionals[0]!,
  );
} catch (err) {
  process.exitCode = reportFatal('opdbus-watchdog', err);
}
