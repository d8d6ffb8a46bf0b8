// Writes the generated docs: `pnpm docs:generate` (after a build).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errorsReference, stateReference } from './generate.js';

const docs = fileURLToPath(new URL('../../../docs/', import.meta.url));
writeFileSync(`${docs}state-reference.md`, stateReference());
writeFileSync(`${docs}errors.md`, await errorsReference());
process.stdout.write(`wrote ${docs}state-reference.md and ${docs}errors.md\n`);
