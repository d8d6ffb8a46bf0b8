#!/usr/bin/env node
// `opdbus-watchdog --state-dir DIR [--log-level L] TXID`: the commit-confirmed watchdog process,
// started by spawnWatchdog (internal; not meant to be run by hand).
import { parseArgs } from 'node:util';
import { reportFatal } from './report.js';
import { runWatchdogProcess } from './watchdog.js';

try {
  const { values, positionals } = parseArgs({
    options: { 'state-dir': { type: 'string' }, 'log-level': { type: 'string', default: 'info' } },
    allowPositionals: true,
  });
  const stateDir = values['state-dir'];
  if (stateDir === undefined || positionals.length !== 1)
    throw new Error('usage: opdbus-watchdog --state-dir DIR [--log-level LEVEL] TXID');
  process.exitCode = await runWatchdogProcess({ stateDir, logLevel: values['log-level'] }, positionals[0]!);
} catch (err) {
  process.exitCode = reportFatal('opdbus-watchdog', err);
}
