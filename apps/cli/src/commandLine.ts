/**
 * Where the command is in `opdbus`'s arguments, for the program (src/main.ts) and for the
 * launcher (src/launcher.ts), which keeps a code cache per command before the program exists.
 *
 * @module
 */

/**
 * The index in `argv` of the command: the first argument that is neither a global option nor the
 * value of one (`valued`: the global options, long and short, that take a value). `--name=value`
 * is one argument; `--` ends the options. `argv.length` when there is no command.
 */
export function commandIndex(valued: ReadonlySet<string>, argv: readonly string[]): number {
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-') && argv[i] !== '--') i += valued.has(argv[i]!) ? 2 : 1;
  return i;
}

/** What the launcher knows of the program's command line (scripts/bundle.mjs takes it from the program). */
export interface CommandLine {
  /** Each command's name and each of its aliases, to the command's name. */
  commands: Record<string, string>;
  /** The global options, long and short, that take a value. */
  valued: string[];
}

/**
 * The command `argv` runs, by its name (an alias gives the command's name), or `other` when it
 * names none of `line`'s commands (`--help`, `--version`, a misspelled command).
 */
export function commandOf(argv: readonly string[], line: CommandLine): string {
  const given = argv[commandIndex(new Set(line.valued), argv)];
  return given !== undefined && Object.hasOwn(line.commands, given) ? line.commands[given]! : 'other';
}
