import type { CommandContext } from '../context.js';

interface NumaOptions {
  fsroot?: string;
  all?: boolean;
  wholeSystem?: boolean;
}

/**
 * `opdbus numa`: the machine's topology (an lstopo-like tree, or JSON), and `opdbus numa place
 * FILE`: how a `numa.placements` section would be resolved on it. @opdbus/numa is imported only
 * when one of them runs.
 */
export function registerNuma(context: CommandContext): void {
  const { program, output, globals, run } = context;
  const numa = program
    .command('numa')
    .description('show the CPU, cache, NUMA and PCI topology (from sysfs; --fsroot reads another tree)')
    .option('--fsroot <dir>', 'read the topology from DIR/sys and DIR/proc instead of / (as HWLOC_FSROOT)')
    .option('--all', 'also list PCI bridges and devices of unknown kind')
    .option(
      '--whole-system',
      "the whole machine, not only the CPUs and NUMA nodes this process's cpuset allows (as lstopo --disallowed)",
    )
    .action((options: NumaOptions) =>
      run(async () => {
        const { formatTopology, readTopology } = await import('@opdbus/numa');
        const topology = await readTopology({
          root: options.fsroot ?? '/',
          wholeSystem: options.wholeSystem === true,
        });
        if (globals().json) output.out(JSON.stringify(topology, null, 2));
        else output.out(formatTopology(topology, { allDevices: options.all === true }));
        return 0;
      })(),
    );
  // Its subcommands only when it is the command given (CommandContext.builds).
  if (!context.builds(numa)) return;

  numa
    .command('place')
    .description(
      'resolve the numa.placements of FILE (a state document, or a section `placements: {...}`) on this machine',
    )
    .argument('<file>', 'YAML or JSON; - for stdin')
    .option('--fsroot <dir>', 'resolve against the topology under DIR instead of /')
    .action((file: string, options: NumaOptions) =>
      run(async () => {
        const { place } = await import('../commands/numa.js');
        return place(
          file,
          { fsroot: options.fsroot ?? numa.opts<NumaOptions>().fsroot ?? '/', json: globals().json === true },
          output,
        );
      })(),
    );
}
