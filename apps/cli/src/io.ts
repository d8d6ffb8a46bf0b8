// What every command shares and `opdbus --version` / `--help` need: global options, output and
// the default state directory. Kept free of imports so that the CLI starts fast.

/** Options every command takes. */
export interface GlobalOptions {
  netns?: string;
  stateDir: string;
  bus?: string;
  ovsdb?: string;
  root?: string;
  json?: boolean;
  logLevel: string;
  /** `--plugin SPEC` (repeatable): plugin packages to load, npm names or directories. */
  plugin?: string[];
  /** `--config FILE`: the configuration file (default /etc/opdbus/config.yaml when it exists). */
  config?: string;
}

/** The default state directory (or $OPDBUS_STATE_DIR). */
export const defaultStateDir = process.env.OPDBUS_STATE_DIR ?? '/var/lib/opdbus';

/** Where human and machine output go; tests and the demo can capture them. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}

export const stdio: Output = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
};
