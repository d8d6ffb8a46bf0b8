import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OpdbusError, quoteInput, writeOutputFile } from '@opdbus/core';
import type { DbusConnection } from './connection.js';
import {
  STANDARD_INTERFACES,
  parseIntrospection,
  type Annotation,
  type ArgInfo,
  type InterfaceInfo,
  type MethodInfo,
  type NodeInfo,
  type PropertyInfo,
} from './introspection.js';
import { parseSingleType, tsType, zodSource } from './signature.js';
import { walkObjectTree, type WalkOptions } from './walker.js';

/** What the build stage generates from: interfaces, and where they were found. */
export interface ServiceDescription {
  /** The service's bus name, when known (defaults of the generated proxies). */
  destination: string | undefined;
  /** Every interface, once, in order of discovery. */
  interfaces: InterfaceInfo[];
  /** The object paths each interface was found at. */
  paths: Record<string, string[]>;
  /** Where it came from, for the generated header. */
  source: string;
}

function describeNode(node: NodeInfo, path: string | undefined, into: ServiceDescription): void {
  for (const iface of node.interfaces) {
    if (!into.interfaces.some((i) => i.name === iface.name)) into.interfaces.push(iface);
    if (path !== undefined) (into.paths[iface.name] ??= []).push(path);
  }
  for (const child of node.nodes) {
    if (child.interfaces.length === 0 && child.nodes.length === 0) continue;
    const childPath =
      path === undefined || child.name === undefined
        ? undefined
        : child.name.startsWith('/')
          ? child.name
          : `${path === '/' ? '' : path}/${child.name}`;
    describeNode(child, childPath, into);
  }
}

/**
 * Stage 1 (introspect) from XML: the interfaces of an introspection document (its root node and
 * any inline child nodes). `path` is the object the XML describes, when known.
 */
export function describeXml(
  xml: string,
  options: { source?: string; destination?: string; path?: string } = {},
): ServiceDescription {
  const source = options.source ?? 'introspection XML';
  const node = parseIntrospection(xml, source);
  const out: ServiceDescription = { destination: options.destination, interfaces: [], paths: {}, source };
  describeNode(node, options.path ?? (node.name?.startsWith('/') === true ? node.name : undefined), out);
  return out;
}

/** Stage 1 from XML files (each parsed and merged, first definition of an interface wins). */
export async function describeXmlFiles(
  files: readonly string[],
  options: { destination?: string } = {},
): Promise<ServiceDescription> {
  const out: ServiceDescription = {
    destination: options.destination,
    interfaces: [],
    paths: {},
    source: files.join(', '),
  };
  for (const file of files) {
    let xml: string;
    try {
      xml = await readFile(file, 'utf8');
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_DBUS_INTROSPECTION',
        `Cannot read the introspection file ${file}: ${(err as Error).message}.`,
        {
          data: { file },
          cause: err,
        },
      );
    }
    const one = describeXml(xml, {
      source: file,
      ...(options.destination === undefined ? {} : { destination: options.destination }),
    });
    mergeInto(out, one);
  }
  return out;
}

function mergeInto(out: ServiceDescription, one: ServiceDescription): void {
  for (const iface of one.interfaces)
    if (!out.interfaces.some((i) => i.name === iface.name)) out.interfaces.push(iface);
  for (const [name, paths] of Object.entries(one.paths)) (out.paths[name] ??= []).push(...paths);
}

/**
 * Stage 1 from a live service: walk its object tree (or introspect only `paths`) and collect
 * every interface and where it lives.
 */
export async function describeService(
  connection: DbusConnection,
  destination: string,
  options: WalkOptions & { paths?: readonly string[] } = {},
): Promise<ServiceDescription> {
  const out: ServiceDescription = {
    destination,
    interfaces: [],
    paths: {},
    source: `${destination} on ${connection.address}`,
  };
  if (options.paths !== undefined) {
    for (const path of options.paths) {
      const node = await connection.introspect(destination, path);
      const one: ServiceDescription = { destination, interfaces: [], paths: {}, source: out.source };
      describeNode({ ...node, nodes: [] }, path, one);
      mergeInto(out, one);
    }
    return out;
  }
  for (const object of await walkObjectTree(connection, destination, options)) {
    for (const iface of object.interfaces) {
      if (!out.interfaces.some((i) => i.name === iface.name)) out.interfaces.push(iface);
      (out.paths[iface.name] ??= []).push(object.path);
    }
  }
  return out;
}

/** A generated file (path relative to the output directory). */
export interface GeneratedFile {
  path: string;
  content: string;
}

/** Options of {@link generateBindings}. */
export interface GenerateOptions {
  /** Only these interfaces (default: all but the standard org.freedesktop.DBus.* ones). */
  interfaces?: readonly string[];
  /** Include org.freedesktop.DBus.Peer / Introspectable / Properties / ObjectManager (default false). */
  includeStandard?: boolean;
  /** The module the generated code imports the runtime from (default `@opdbus/dbus`). */
  importFrom?: string;
  /** Module names by interface (default: derived, e.g. `systemd1Manager`). */
  moduleNames?: Readonly<Record<string, string>>;
  /** Default object paths by interface (default: the one path it was found at, if only one). */
  defaultPaths?: Readonly<Record<string, string | undefined>>;
  /** Import suffix for the index's re-exports (default `.js`). */
  importSuffix?: string;
}

const reservedWords = new Set(
  'break case catch class const continue debugger default delete do else enum export extends false finally for function if import in instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package private protected public await arguments eval'.split(
    ' ',
  ),
);
const baseMembers = new Set([
  'connection',
  'destination',
  'path',
  'interfaceName',
  'callMethod',
  'subscribeSignal',
  'get',
  'getAll',
  'set',
  'onPropertiesChanged',
  'cacheProperties',
  'constructor',
]);

function words(name: string): string[] {
  return name
    .replace(/[^A-Za-z0-9]+/g, ' ')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .trim()
    .split(/\s+/)
    .filter(Boolean);
}

/** `GetUnitByPID` → `getUnitByPID`, `unit_name` → `unitName`. */
export function lowerCamel(name: string): string {
  const w = words(name);
  if (w.length === 0) return '_';
  const [first, ...rest] = w;
  const head =
    /^[A-Z0-9]+$/.test(first!) && first!.length > 1 && rest.length === 0
      ? first!.toLowerCase()
      : first![0]!.toLowerCase() + first!.slice(1);
  const out = head + rest.map((x) => x[0]!.toUpperCase() + x.slice(1)).join('');
  return /^[0-9]/.test(out) ? `_${out}` : out;
}

function upperCamel(name: string): string {
  const lc = lowerCamel(name);
  return lc[0]!.toUpperCase() + lc.slice(1);
}

/**
 * The module name of an interface: the segments after the reverse-DNS prefix, camelCased
 * (`org.freedesktop.systemd1.Manager` → `systemd1Manager`, `org.freedesktop.hostname1` → `hostname1`).
 */
export function moduleNameOf(interfaceName: string): string {
  const segments = interfaceName.split('.');
  const tail = segments.length > 2 ? segments.slice(2) : segments;
  return lowerCamel(tail.map((s) => s[0]!.toUpperCase() + s.slice(1)).join(''));
}

function docLines(text: string): string[] {
  return text
    .replace(/\*\//g, '*\\/')
    .split('\n')
    .map((l) => l.trimEnd());
}

function annotationNotes(annotations: readonly Annotation[]): string[] {
  const notes: string[] = [];
  const doc = annotations.find((a) => a.name === 'org.gtk.GDBus.DocString')?.value;
  if (doc !== undefined) notes.push(...docLines(doc));
  for (const a of annotations) {
    if (a.name === 'org.freedesktop.systemd1.Privileged' && a.value === 'true')
      notes.push('Needs privileges: the service checks the caller (polkit or root).');
    if (a.name === 'org.gtk.GDBus.Since') notes.push(`Since ${a.value}.`);
  }
  return notes;
}

function deprecatedTag(annotations: readonly Annotation[]): string[] {
  return annotations.some((a) => a.name === 'org.freedesktop.DBus.Deprecated' && a.value === 'true')
    ? ['@deprecated Marked deprecated by the service (org.freedesktop.DBus.Deprecated).']
    : [];
}

function block(lines: readonly string[], indent: string): string {
  if (lines.length === 0) return '';
  return `${indent}/**\n${lines.map((l) => (l === '' ? `${indent} *` : `${indent} * ${l}`)).join('\n')}\n${indent} */\n`;
}

function emitsNote(p: PropertyInfo): string {
  switch (p.emitsChangedSignal) {
    case 'true':
      return 'Changes are signalled with PropertiesChanged.';
    case 'invalidates':
      return 'Changes are signalled as invalidated (read it again).';
    case 'const':
      return 'Constant while the object exists.';
    case 'false':
      return 'Changes are not signalled: read it again to see them.';
  }
}

function paramNames(args: readonly ArgInfo[]): string[] {
  const used = new Set<string>();
  return args.map((a, i) => {
    let name = a.name === undefined || a.name === '' ? `arg${i}` : lowerCamel(a.name);
    if (reservedWords.has(name)) name = `${name}_`;
    while (used.has(name)) name = `${name}_`;
    used.add(name);
    return name;
  });
}

function outNames(args: readonly ArgInfo[]): string[] | undefined {
  if (args.some((a) => a.name === undefined || a.name === '')) return undefined;
  const names = args.map((a) => lowerCamel(a.name!));
  return new Set(names).size === names.length ? names : undefined;
}

function typeOf(signature: string, direction: 'in' | 'out'): string {
  return tsType(parseSingleType(signature), direction);
}

function returnType(method: MethodInfo): string {
  const outs = method.outArgs;
  if (outs.length === 0) return 'void';
  if (outs.length === 1) return typeOf(outs[0]!.type, 'out');
  const names = outNames(outs);
  if (names === undefined) return `[${outs.map((a) => typeOf(a.type, 'out')).join(', ')}]`;
  return `{ ${outs.map((a, i) => `${names[i]}: ${typeOf(a.type, 'out')}`).join('; ')} }`;
}

function returnExpression(method: MethodInfo): string {
  const outs = method.outArgs;
  if (outs.length === 0) return '';
  if (outs.length === 1) return `return out[0] as ${typeOf(outs[0]!.type, 'out')};`;
  const names = outNames(outs);
  if (names === undefined) return `return out as ${returnType(method)};`;
  return `return { ${outs.map((a, i) => `${names[i]}: out[${i}] as ${typeOf(a.type, 'out')}`).join(', ')} };`;
}

function methodSignatureLine(method: MethodInfo): string {
  const args = [
    ...method.inArgs.map((a) => `in ${a.type} ${a.name ?? ''}`.trim()),
    ...method.outArgs.map((a) => `out ${a.type} ${a.name ?? ''}`.trim()),
  ];
  return `\`${method.name}(${args.join(', ')})\``;
}

/** Generate the module of one interface. */
function interfaceModule(
  iface: InterfaceInfo,
  className: string,
  destination: string | undefined,
  defaultPath: string | undefined,
  importFrom: string,
  source: string,
): string {
  const props = iface.properties;
  const writable = props.filter((p) => p.access !== 'read');
  const uses = { variant: false };
  const scan = (sig: string): void => {
    if (sig.includes('v')) uses.variant = true;
  };
  for (const p of props) scan(p.type);
  for (const m of iface.methods) for (const a of [...m.inArgs, ...m.outArgs]) scan(a.type);
  for (const s of iface.signals) for (const a of s.args) scan(a.type);

  const lines: string[] = [];
  lines.push(`// Generated by @opdbus/dbus codegen from ${source}. Do not edit: regenerate it.`);
  if (iface.methods.length > 0) lines.push(`import { z } from 'zod';`);
  const runtime = [
    'InterfaceProxy',
    ...(iface.methods.length > 0 ? ['lazySchema'] : []),
    ...(uses.variant ? ['Variant'] : []),
    'type DbusConnection',
    'type ProxyTarget',
    ...(iface.signals.length > 0 ? ['type Subscription'] : []),
  ];
  lines.push(`import { ${runtime.join(', ')} } from '${importFrom}';`);
  lines.push('');
  // Properties interface.
  lines.push(block([`The properties of ${iface.name}.`], '').trimEnd());
  lines.push(`export interface ${className}Properties {`);
  for (const p of props) {
    const doc = [
      ...annotationNotes(p.annotations),
      `Signature \`${p.type}\`, ${p.access}. ${emitsNote(p)}`,
      ...deprecatedTag(p.annotations),
    ];
    lines.push(block(doc, '  ').trimEnd());
    lines.push(`  ${p.access === 'read' ? 'readonly ' : ''}${p.name}: ${typeOf(p.type, 'out')};`);
  }
  lines.push('}');
  lines.push('');
  lines.push(block([`The writable properties of ${iface.name} (for \`set\`).`], '').trimEnd());
  lines.push(
    `export type ${className}Writable = ${writable.length === 0 ? 'never' : writable.map((p) => `'${p.name}'`).join(' | ')};`,
  );
  lines.push('');
  // Argument schemas, each built at its first use: importing a binding builds none.
  lines.push(
    block(
      [
        `zod schemas of the input arguments of each method of ${iface.name}, as tuples.`,
        'Each is built at its first use (`lazySchema`): importing this module builds none.',
      ],
      '',
    ).trimEnd(),
  );
  lines.push(`export const ${className}Args = {`);
  for (const m of iface.methods) {
    lines.push(
      `  ${m.name}: lazySchema(() => z.tuple([${m.inArgs.map((a) => zodSource(parseSingleType(a.type))).join(', ')}])),`,
    );
  }
  lines.push('} as const;');
  lines.push('');
  // Class.
  const classDoc = [
    `Typed proxy of the D-Bus interface \`${iface.name}\`.`,
    ...annotationNotes(iface.annotations),
    '',
    `Properties: \`get(name)\`, \`getAll()\`, \`set(name, value)\` for writable ones, \`cacheProperties()\` for a live cache.`,
    ...deprecatedTag(iface.annotations),
  ];
  lines.push(block(classDoc, '').trimEnd());
  lines.push(
    `export class ${className} extends InterfaceProxy<${className}Properties, ${className}Writable> {`,
  );
  lines.push(`  /** The D-Bus interface name. */`);
  lines.push(`  static readonly interfaceName = '${iface.name}';`);
  lines.push(`  /** The service this proxy talks to unless told otherwise. */`);
  lines.push(
    `  static readonly defaultDestination: string | undefined = ${destination === undefined ? 'undefined' : `'${destination}'`};`,
  );
  lines.push(`  /** The object path this proxy talks to unless told otherwise. */`);
  lines.push(
    `  static readonly defaultPath: string | undefined = ${defaultPath === undefined ? 'undefined' : `'${defaultPath}'`};`,
  );
  lines.push(`  /** Property signatures, by name. */`);
  lines.push(`  static readonly propertySignatures: Readonly<Record<string, string>> = {`);
  for (const p of props) lines.push(`    ${p.name}: '${p.type}',`);
  lines.push('  };');
  lines.push('');
  lines.push(
    `  /** A proxy of ${iface.name} on \`target\` (default: the service and path it was generated from). */`,
  );
  lines.push(`  constructor(connection: DbusConnection, target: ProxyTarget = {}) {`);
  lines.push(`    super(connection, ${className}, target);`);
  lines.push('  }');
  const used = new Set<string>(baseMembers);
  const uniqueMember = (name: string): string => {
    let out = name;
    if (used.has(out) || reservedWords.has(out)) out = `${out}Method`;
    while (used.has(out)) out = `${out}_`;
    used.add(out);
    return out;
  };
  for (const m of iface.methods) {
    const name = uniqueMember(lowerCamel(m.name));
    const params = paramNames(m.inArgs);
    const doc = [
      `Calls ${methodSignatureLine(m)}.`,
      ...annotationNotes(m.annotations),
      ...(m.noReply ? ['The service sends no reply (NoReply): this resolves once the call is sent.'] : []),
      ...m.inArgs.map(
        (a, i) => `@param ${params[i]} - \`${a.type}\`${a.name === undefined ? '' : ` (${a.name})`}`,
      ),
      ...(m.outArgs.length === 0
        ? []
        : [
            `@returns ${m.outArgs.map((a) => `\`${a.type}\`${a.name === undefined ? '' : ` ${a.name}`}`).join(', ')}`,
          ]),
      ...deprecatedTag(m.annotations),
    ];
    lines.push('');
    lines.push(block(doc, '  ').trimEnd());
    const signature = m.inArgs.map((a) => a.type).join('');
    // A method without arguments has nothing to check: calling it builds no schema.
    const schema = m.inArgs.length === 0 ? 'undefined' : `${className}Args.${m.name}`;
    const call = `this.callMethod('${m.name}', '${signature}', ${schema}, [${params.join(', ')}]${m.noReply ? ', { noReply: true }' : ''})`;
    lines.push(
      `  async ${name}(${m.inArgs.map((a, i) => `${params[i]}: ${typeOf(a.type, 'in')}`).join(', ')}): Promise<${returnType(m)}> {`,
    );
    if (m.outArgs.length === 0) lines.push(`    await ${call};`);
    else {
      lines.push(`    const out = await ${call};`);
      lines.push(`    ${returnExpression(m)}`);
    }
    lines.push('  }');
  }
  for (const s of iface.signals) {
    const name = uniqueMember(`on${upperCamel(s.name)}`);
    const params = paramNames(s.args);
    const doc = [
      `Receive the signal \`${s.name}(${s.args.map((a) => `${a.type} ${a.name ?? ''}`.trim()).join(', ')})\` from this object.`,
      ...annotationNotes(s.annotations),
      '@returns the subscription (unsubscribe to stop)',
      ...deprecatedTag(s.annotations),
    ];
    lines.push('');
    lines.push(block(doc, '  ').trimEnd());
    lines.push(
      `  ${name}(handler: (${s.args.map((a, i) => `${params[i]}: ${typeOf(a.type, 'out')}`).join(', ')}) => void): Promise<Subscription> {`,
    );
    lines.push(
      s.args.length === 0
        ? `    return this.subscribeSignal('${s.name}', () => handler());`
        : `    return this.subscribeSignal('${s.name}', (args) => handler(${s.args.map((a, i) => `args[${i}] as ${typeOf(a.type, 'out')}`).join(', ')}));`,
    );
    lines.push('  }');
  }
  lines.push('}');
  lines.push('');
  return lines.join('\n');
}

/**
 * Stage 2 (build): typed TypeScript proxy modules, one per interface, plus an `index.ts`. Each
 * module has a `…Properties` interface, a `…Args` object of zod schemas for every method's input
 * arguments (each built at its first use, with `lazySchema`: importing a binding builds no schema and
 * calling a method without arguments builds none), and a proxy class with a typed method per D-Bus method, `on<Signal>` per signal,
 * TSDoc from the annotations (deprecation, EmitsChangedSignal, NoReply, privileges, doc strings).
 * The output typechecks under the strict settings of this repository.
 */
export function generateBindings(
  description: ServiceDescription,
  options: GenerateOptions = {},
): GeneratedFile[] {
  const importFrom = options.importFrom ?? '@opdbus/dbus';
  const suffix = options.importSuffix ?? '.js';
  let interfaces = description.interfaces.filter(
    (i) => options.includeStandard === true || !STANDARD_INTERFACES.has(i.name),
  );
  if (options.interfaces !== undefined) {
    const missing = options.interfaces.filter((name) => !description.interfaces.some((i) => i.name === name));
    if (missing.length > 0) {
      throw new OpdbusError(
        'OPDBUS_ERR_DBUS_CODEGEN',
        `${description.source} has no interface ${missing.join(', ')}; it has ${description.interfaces.map((i) => i.name).join(', ') || 'none'}.`,
        { data: { missing } },
      );
    }
    interfaces = interfaces.filter((i) => options.interfaces!.includes(i.name));
  }
  if (interfaces.length === 0) {
    throw new OpdbusError(
      'OPDBUS_ERR_DBUS_CODEGEN',
      `Nothing to generate from ${description.source}: it has no interfaces beyond the standard org.freedesktop.DBus ones.`,
    );
  }
  const files: GeneratedFile[] = [];
  const modules = new Map<string, string>();
  for (const iface of interfaces) {
    const module = options.moduleNames?.[iface.name] ?? moduleNameOf(iface.name);
    const clash = modules.get(module);
    if (clash !== undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_DBUS_CODEGEN',
        `Interfaces ${clash} and ${iface.name} would both be generated as ${module}.ts; name one with \`moduleNames\`.`,
        { data: { module, interfaces: [clash, iface.name] } },
      );
    }
    modules.set(module, iface.name);
    const className = upperCamel(module);
    const paths = description.paths[iface.name] ?? [];
    const defaultPath =
      options.defaultPaths !== undefined && iface.name in options.defaultPaths
        ? options.defaultPaths[iface.name]
        : paths.length === 1
          ? paths[0]
          : undefined;
    files.push({
      path: `${module}.ts`,
      content: interfaceModule(
        iface,
        className,
        description.destination,
        defaultPath,
        importFrom,
        description.source,
      ),
    });
  }
  const index = [
    `// Generated by @opdbus/dbus codegen from ${description.source}. Do not edit: regenerate it.`,
    ...[...modules.keys()].map((module) => `export * from './${module}${suffix}';`),
    '',
  ].join('\n');
  files.push({ path: 'index.ts', content: index });
  return files;
}

/**
 * Stage 3 (deploy): write generated files into `outDir` (created if needed), each atomically
 * (temporary file, then rename). Returns the paths written.
 */
export async function writeBindings(files: readonly GeneratedFile[], outDir: string): Promise<string[]> {
  // Every generated file is a plain file name in outDir: a module name derived from an interface
  // name (or given in `moduleNames`) can never place a file elsewhere.
  for (const file of files) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*\.ts$/.test(file.path) || file.path.includes('..')) {
      throw new OpdbusError(
        'OPDBUS_ERR_PATH_UNSAFE',
        `A generated file would be named ${quoteInput(file.path)}; generated files are plain names ending in .ts inside the output directory.`,
        { data: { file: file.path.slice(0, 256), outDir } },
      );
    }
  }
  try {
    await mkdir(outDir, { recursive: true });
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_DBUS_CODEGEN',
      `Cannot create the output directory ${outDir}: ${(err as Error).message}.`,
      { data: { outDir }, cause: err },
    );
  }
  const written: string[] = [];
  for (const file of files) written.push(await writeOutputFile(join(outDir, file.path), file.content, 0o644));
  return written;
}
