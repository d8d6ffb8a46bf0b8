#!/usr/bin/env node
// Runs the benchmark suites (all, or those named on the command line) and writes each suite's
// section of docs/benchmarks.md, between markers, leaving the other sections as they were.
// Usage (as root, after a build): node bench/run.mjs [suite ...]   — or `pnpm bench`.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const docFile = join(here, '..', 'docs', 'benchmarks.md');
const available = readdirSync(join(here, 'suites'))
  .filter((f) => f.endsWith('.mjs'))
  .map((f) => f.slice(0, -4))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !available.includes(w));
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; available: ${available.join(', ')}`);
  process.exit(2);
}

const HEADER = `# Benchmarks

Measured with \`pnpm bench\` (all suites) or \`node bench/run.mjs SUITE\` (one), as root, after a build.
Each suite compares op-dbus with what a user would otherwise use, in the same run on the same
machine. Numbers are medians unless stated. Each section says when and where it was measured.
`;

let doc = existsSync(docFile) ? readFileSync(docFile, 'utf8') : HEADER;
if (!doc.startsWith('# Benchmarks')) doc = HEADER + doc;
const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${process.platform === 'linux' ? readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim() : process.platform}, Node ${process.version}`;

let failed = 0;
for (const name of wanted.length > 0 ? wanted : available) {
  const suite = await import(join(here, 'suites', `${name}.mjs`));
  process.stderr.write(`[bench] ${name}: ${suite.title}\n`);
  let body;
  try {
    body = await suite.run({ log: (m) => process.stderr.write(`[bench] ${name}: ${m}\n`) });
  } catch (err) {
    failed++;
    process.stderr.write(`[bench] ${name} FAILED: ${err.stack ?? err}\n`);
    continue;
  }
  const section = `<!-- bench:${name}:start -->\n## ${suite.title}\n\nReproduce: \`node bench/run.mjs ${name}\` (as root). Measured ${new Date().toISOString().slice(0, 10)} on ${machine}.\n\n${body.trim()}\n<!-- bench:${name}:end -->`;
  const pattern = new RegExp(`<!-- bench:${name}:start -->[\\s\\S]*?<!-- bench:${name}:end -->`);
  doc = pattern.test(doc) ? doc.replace(pattern, section) : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(docFile, doc);
  process.stdout.write(`${section}\n\n`);
}
process.exit(failed === 0 ? 0 : 1);
