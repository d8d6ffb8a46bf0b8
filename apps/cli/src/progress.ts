import type { BuiltinPluginsOptions } from '@opdbus/runtime';

/**
 * A progress bar on `stream` for the packages plugin's PackageKit transactions, when `stream` is a
 * terminal (nothing otherwise: logs and pipes get no carriage returns). One line per change,
 * redrawn in place: `opdbus-gamma [##########          ]  50%`.
 */
export function packagesProgressBar(stream: NodeJS.WriteStream = process.stderr): BuiltinPluginsOptions {
  if (stream.isTTY !== true) return {};
  const width = 30;
  let last = '';
  let open = false;
  return {
    packagesProgress: (progress) => {
      const pct = progress.percentage;
      const filled = pct === undefined ? 0 : Math.round((pct / 100) * width);
      const line = `${progress.change} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${pct === undefined ? '  ?' : String(pct).padStart(3)}%`;
      if (line === last) return;
      if (open && !line.startsWith(`${progress.change} `)) stream.write('\n');
      last = line;
      open = pct !== 100;
      stream.write(`\r${line}\x1b[K${pct === 100 ? '\n' : ''}`);
    },
  };
}
