import type { MeshJoinOptions } from '../commands/mesh.js';
import type { CommandContext } from '../context.js';

/**
 * `opdbus mesh …`: WireGuard meshes. The controller keeps the mesh (`init`, `token`, `remove`,
 * `serve`); every node enrolls (`join`), applies its own document rendered from the signed
 * roster (`apply`, `document`) and rotates its key (`rotate`). @opdbus/mesh is imported only when
 * one of them runs.
 */
export function registerMesh(context: CommandContext): void {
  const { program, output, globals, run } = context;
  const load = () => import('../commands/mesh.js');
  const mesh = program
    .command('mesh')
    .description(
      'WireGuard meshes: plan from a definition, enroll nodes with one-time tokens, apply, rotate, remove',
    );
  // Its subcommands only when it is the command given (CommandContext.builds).
  if (!context.builds(mesh)) return;

  mesh
    .command('init')
    .description('create a mesh from a definition file on this node (its controller) and enroll this node')
    .argument('<definition>', 'mesh definition (YAML or JSON): name, pool, topology, nodes')
    .requiredOption('--node <name>', "this node's name in the mesh")
    .option('--endpoint <ip:port>', 'where the other nodes reach this node (default: from the definition)')
    .option('--subnet <cidr...>', 'networks behind this node, routed to it over the mesh')
    .option('--interface <name>', "this node's WireGuard interface, when not the mesh's")
    .option('--url <url>', 'where nodes reach this controller (`opdbus mesh serve`), written into tokens')
    .action((file: string, options: MeshJoinOptions & { url?: string; node: string }) =>
      run(async () => (await load()).init(globals(), file, options, output))(),
    );

  mesh
    .command('token')
    .description('issue a one-time join token (controller)')
    .argument('<mesh>', 'mesh name')
    .option('--node <name>', 'bind the token to this node name')
    .option('--ttl <seconds>', 'how long it is valid (default 3600)')
    .option('--url <url>', 'the controller URL to write into the token (default: the one set at init)')
    .action((name: string, options: { node?: string; ttl?: string; url?: string }) =>
      run(async () => (await load()).token(globals(), name, options, output))(),
    );

  mesh
    .command('join')
    .description('enroll this node with a token: its key is generated here, only the public key is sent')
    .argument('<token>', 'the token from `opdbus mesh token`')
    .option('--node <name>', "this node's name (default: the name the token is bound to)")
    .option('--endpoint <ip:port>', 'where the other nodes reach this node (default: as declared)')
    .option('--subnet <cidr...>', 'networks behind this node (e.g. its container bridge), routed to it')
    .option('--interface <name>', "this node's WireGuard interface, when not the mesh's")
    .option('--apply', 'apply the mesh right after enrolling')
    .action((token: string, options: MeshJoinOptions) =>
      run(async () => (await load()).join(globals(), token, options, output))(),
    );

  mesh
    .command('apply')
    .description("fetch the signed roster and apply this node's document as one transaction")
    .argument('<mesh>', 'mesh name')
    .option('--dry-run', 'only show the plan (exit 2 when changes are pending)')
    .option('--wait', 'also apply the key rotations scheduled in the roster, each at its time')
    .option(
      '--with <path>',
      "merge this host's own document (a file or a directory of them) into the same transaction, repeatable",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .action((name: string, options: { dryRun?: boolean; wait?: boolean; with?: string[] }) =>
      run(async () => (await load()).apply(globals(), name, options, output))(),
    );

  mesh
    .command('document')
    .description("print a node's state document as the roster renders it (default: this node's)")
    .argument('<mesh>', 'mesh name')
    .option('--node <name>', 'another node (the controller knows every roster)')
    .action((name: string, options: { node?: string }) =>
      run(async () => (await load()).document(globals(), name, options, output))(),
    );

  mesh
    .command('remove')
    .description(
      'remove a node (controller): its key is revoked, every node drops the peer on its next apply',
    )
    .argument('<mesh>', 'mesh name')
    .argument('<node>', 'node name')
    .action((name: string, node: string) =>
      run(async () => (await load()).remove(globals(), name, node, output))(),
    );

  mesh
    .command('rotate')
    .description("rotate this node's key: a new key generated here, its public key sent to the controller")
    .argument('<mesh>', 'mesh name')
    .option(
      '--in <seconds>',
      'schedule the switch this many seconds ahead, so that every node switches at once (`opdbus mesh apply --wait`)',
    )
    .option('--apply', 'switch to the new key right away (apply this node)')
    .action((name: string, options: { apply?: boolean; in?: string }) =>
      run(async () => (await load()).rotate(globals(), name, options, output))(),
    );

  mesh
    .command('status')
    .description('the roster and, for this node, each peer: endpoint, last handshake, traffic')
    .argument('<mesh>', 'mesh name')
    .action((name: string) => run(async () => (await load()).status(globals(), name, output))());

  mesh
    .command('list')
    .description('the meshes this node controls or is a member of')
    .action(() => run(async () => (await load()).list(globals(), output))());

  mesh
    .command('serve')
    .description("serve the controller's API (join, roster, key changes) for the meshes this node controls")
    .option('--listen <host:port>', 'address to listen on (default 0.0.0.0:7800)')
    .action((options: { listen?: string }) =>
      run(async () => (await load()).serve(globals(), options, output))(),
    );
}
