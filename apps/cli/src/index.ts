/**
 * @opdbus/cli: the `opdbus` command. Importable to embed the CLI (`main(argv)`) or to reuse its
 * plugin set and exit codes.
 *
 * @packageDocumentation
 */
export { exitCodeFor, exitCodes, type ExitName } from './exitCodes.js';
export { buildProgram, main } from './main.js';
export { defaultPlugins } from './plugins.js';
export { createEngine, defaultStateDir, type GlobalOptions, type Output } from './runtime.js';
